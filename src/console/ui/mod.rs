//! Drawing: `draw(&App, &mut Frame)`, a pure function of the app, one file per pane. Nothing
//! here changes the app or decodes anything: what a pane needs was prepared in `update`.
//! Tables render only the rows that fit, so a frame costs what the terminal shows, not what
//! the server holds.
//!
//! Most of what is drawn was chosen by someone else (identities, names, reasons, frames). The
//! model keeps it as sent, so `:find`, export and copy see the real bytes; it is made
//! printable where it becomes a widget: [`paragraph`], [`block`] titles, table cells and
//! [`cut`] escape every control and bidi character ([`crate::text::printable`]). [`draw`]
//! then neutralises any such character still in the frame, so a path that was missed shows a
//! symbol instead of driving the operator's terminal.

pub mod composer;
pub mod confirm;
pub mod detail;
pub mod frames;
pub mod header;
pub mod help;
pub mod log;
pub mod overview;
pub mod status;
pub mod table;
pub mod triage;
pub mod wrap;

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::app::{App, Detail, Mode, View};
use super::theme::Theme;

/// Draw the console, then [`neutralise`] the frame: the last line of defence for text that
/// reached a widget without going through [`crate::text::printable`].
pub fn draw(app: &App, frame: &mut Frame) {
    draw_panes(app, frame);
    let area = frame.area();
    neutralise(frame.buffer_mut(), area);
}

/// Every pane, as drawn before [`neutralise`] looks at the frame. Public so that tests can
/// check that the panes escape untrusted text themselves, without the net under them.
pub fn draw_panes(app: &App, frame: &mut Frame) {
    let [tabs, info, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::draw_tabs(app, frame, tabs);
    header::draw_info(app, frame, info);
    match &app.detail {
        Some(Detail::History(key)) => triage::draw_history_detail(app, frame, body, key),
        Some(shown @ (Detail::Entry { .. } | Detail::Frames { .. })) => {
            frames::draw(app, frame, body, shown)
        }
        Some(shown) => detail::draw(app, frame, body, shown),
        None => match app.view {
            View::Overview => overview::draw(app, frame, body),
            View::History => triage::draw_history(app, frame, body),
            View::Find => triage::draw_find(app, frame, body),
            View::Timeline => triage::draw_timeline(app, frame, body),
            View::Log => log::draw(app, frame, body, None, "Live log"),
            View::Composer => composer::draw(app, frame, body),
            view => table::draw(app, frame, body, view),
        },
    }
    status::draw_status(app, frame, status);
    status::draw_hints(app, frame, hints);
    match &app.mode {
        Mode::Help => help::draw(app, frame),
        Mode::Confirm { question, .. } | Mode::ConfirmRun { question, .. } => {
            confirm::draw(&app.theme, frame, question)
        }
        Mode::Paste => triage::draw_paste(app, frame, body),
        _ => {}
    }
}

pub(super) fn block<'a>(theme: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(printable_line(title.into()))
        .title_style(theme.title)
}

/// A paragraph of untrusted text: every span made [printable](crate::text::printable).
pub(super) fn paragraph<'a>(text: impl Into<Text<'a>>) -> Paragraph<'a> {
    let mut text = text.into();
    for line in &mut text.lines {
        printable_spans(line);
    }
    Paragraph::new(text)
}

/// A [`paragraph`] wrapped to `columns` (see [`wrap`] for why not ratatui's own wrapping).
pub(super) fn wrapped_paragraph<'a>(
    text: impl Into<Text<'a>>,
    columns: u16,
    trim: bool,
) -> Paragraph<'static> {
    let mut text = text.into();
    for line in &mut text.lines {
        printable_spans(line);
    }
    Paragraph::new(wrap::wrap(text.lines, usize::from(columns), trim))
}

/// The columns inside a bordered block drawn on `area`.
pub(super) fn inner_width(area: Rect) -> u16 {
    area.width.saturating_sub(2)
}

fn printable_line(mut line: Line<'_>) -> Line<'_> {
    printable_spans(&mut line);
    line
}

fn printable_spans(line: &mut Line<'_>) {
    for span in &mut line.spans {
        // Clean text (nearly all of it) is left where it is, not copied.
        if let Cow::Owned(shown) = crate::text::printable(&span.content) {
            span.content = Cow::Owned(shown);
        }
    }
}

/// Replace, in every cell of `area`, what a terminal would obey rather than draw: a cell
/// made only of hidden characters shows a stand-in (a control picture such as `␛`, or `�`),
/// and hidden characters riding on a visible one are dropped. A cell whose symbol takes no
/// column (a combining mark with nothing before it in its span) gets a space to sit on, or
/// the terminal would draw it over the cell before and shift the rest of the row left. Each
/// cell keeps its width, so the layout drawn around it holds.
pub fn neutralise(buffer: &mut Buffer, area: Rect) {
    let area = area.intersection(buffer.area);
    for position in area.positions() {
        let cell = &mut buffer[position];
        let symbol = cell.symbol();
        if symbol.bytes().all(|b| (0x20..0x7f).contains(&b)) && !symbol.is_empty() {
            continue;
        }
        let hidden = symbol.chars().any(crate::text::is_hidden);
        if !hidden && crate::text::width(symbol) > 0 {
            continue;
        }
        let kept: String = symbol
            .chars()
            .filter(|c| !crate::text::is_hidden(*c))
            .collect();
        if kept.is_empty() {
            let first = symbol.chars().next().unwrap_or(' ');
            cell.set_char(stand_in(first));
        } else if crate::text::width(&kept) == 0 {
            cell.set_symbol(&format!(" {kept}"));
        } else {
            cell.set_symbol(&kept);
        }
    }
}

/// One column that says which hidden character stood here: the Unicode control picture of
/// a C0 control or DEL, `�` for the rest.
fn stand_in(hidden: char) -> char {
    match u32::from(hidden) {
        code @ 0..=0x1f => char::from_u32(0x2400 + code).unwrap_or('\u{fffd}'),
        0x7f => '\u{2421}',
        _ => '\u{fffd}',
    }
}

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// [Printable](crate::text::printable) `text` in at most `max` columns, with an ellipsis
/// when cut; spacing is kept.
pub(super) fn cut(text: &str, max: usize) -> String {
    crate::text::clip(text, max).into_owned()
}

/// Greedy word wrap to `width` columns; a word longer than a line gets a line of its own
/// and is cut by the terminal, never split mid-word here.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let word = crate::text::printable(word);
        let word_width = crate::text::width(&word);
        let needed = used + usize::from(!current.is_empty()) + word_width;
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
            used = 0;
        }
        if !current.is_empty() {
            current.push(' ');
            used += 1;
        }
        current.push_str(&word);
        used += word_width;
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;

    use super::{neutralise, wrap_words};

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let text = "Wait for a player to leave and retry, or create a new room instead.";
        let lines = wrap_words(text, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap_words("", 10), Vec::<String>::new());
        // A word longer than the width stands alone rather than being split.
        assert_eq!(
            wrap_words("a averyveryverylongword b", 8),
            ["a", "averyveryverylongword", "b"]
        );
    }

    #[test]
    fn wrapping_counts_columns_and_escapes() {
        let lines = wrap_words("名前の 名前の 名前の ab\u{1b}[2J", 13);
        assert_eq!(lines, ["名前の 名前の", "名前の", "ab\\u{1b}[2J"]);
        assert!(
            lines.iter().all(|l| crate::text::width(l) <= 13),
            "{lines:?}"
        );
    }

    #[test]
    fn neutralising_leaves_no_hidden_character_and_keeps_every_cell() {
        let mut buffer = Buffer::empty(Rect::new(0, 0, 8, 1));
        buffer.set_string(0, 0, "ok", ratatui::style::Style::default());
        // What a span renderer leaves when a control character rides on a visible one, and
        // cells that hold nothing but hidden characters.
        buffer[(2, 0)].set_symbol("a\u{1b}");
        buffer[(3, 0)].set_symbol("\u{1b}");
        buffer[(4, 0)].set_symbol("\u{7f}");
        buffer[(5, 0)].set_symbol("\u{202e}");
        buffer[(6, 0)].set_symbol("\u{9b}x");
        buffer[(7, 0)].set_symbol("\u{301}");
        neutralise(&mut buffer, Rect::new(0, 0, 8, 1));
        let symbols: Vec<&str> = buffer.content.iter().map(|c| c.symbol()).collect();
        assert_eq!(
            symbols,
            ["o", "k", "a", "␛", "␡", "\u{fffd}", "x", " \u{301}"]
        );
    }
}
