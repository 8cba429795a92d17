//! Drawing: `draw(&App, &mut Frame)`, a pure function of the app, one file per pane. Nothing
//! here changes the app or decodes anything: what a pane needs was prepared in `update`.
//! Tables render only the rows that fit, so a frame costs what the terminal shows, not what
//! the server holds.

pub mod composer;
pub mod confirm;
pub mod detail;
pub mod header;
pub mod help;
pub mod log;
pub mod overview;
pub mod status;
pub mod table;
pub mod triage;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

use super::app::{App, Detail, Mode, View};
use super::theme::Theme;

pub fn draw(app: &App, frame: &mut Frame) {
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
        .title(title)
        .title_style(theme.title)
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

/// At most `max` characters, with an ellipsis when cut; spacing is kept.
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Greedy word wrap to `width` characters; a word longer than a line gets a line of its own
/// and is cut by the terminal, never split mid-word here.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap_words;

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
}
