//! The help overlay: the keys as bound, the composer's keys and the command table, one per
//! line, scrolled with the movement keys so that all of it is reachable on an 80×24 screen.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;

use super::{block, centered, cut, paragraph};
use crate::console::app::App;
use crate::console::commands::{help_lines, HelpLine};

/// The widest a keys column gets; longer keys or usages are cut.
const KEYS_WIDTH_MAX: usize = 38;

fn overlay(area: Rect) -> Rect {
    centered(area, 78, area.height.saturating_sub(2))
}

/// Lines of the list the overlay shows at a terminal height: the overlay is two rows shorter
/// than the screen, and its borders and the footer take three more.
pub fn visible_lines(terminal_height: u16) -> usize {
    terminal_height.saturating_sub(2 + 2 + 1) as usize
}

pub fn draw(app: &App, frame: &mut Frame) {
    let theme = &app.theme;
    let area = overlay(frame.area());
    frame.render_widget(Clear, area);
    let all = help_lines(&app.keymap, app.readonly);
    let visible = visible_lines(frame.area().height);
    let first = (app.help_scroll as usize).min(all.len().saturating_sub(visible));
    let width = area.width.saturating_sub(3) as usize;
    // Each section lines its descriptions up after its own widest keys.
    let mut columns = Vec::with_capacity(all.len());
    let mut section_start = 0;
    for (index, line) in all
        .iter()
        .enumerate()
        .chain([(all.len(), &HelpLine::Heading(""))])
    {
        if let HelpLine::Heading(_) = line {
            let widest = all
                .get(section_start..index)
                .unwrap_or_default()
                .iter()
                .filter_map(|l| match l {
                    HelpLine::Item { keys, .. } => {
                        Some(crate::text::width(&crate::text::printable(keys)))
                    }
                    HelpLine::Heading(_) => None,
                })
                .max()
                .unwrap_or(0);
            columns.resize(index, (widest + 2).min(KEYS_WIDTH_MAX));
            section_start = index;
        }
    }
    let mut lines: Vec<Line> = all
        .iter()
        .zip(columns)
        .skip(first)
        .take(visible)
        .map(|(line, column)| match line {
            HelpLine::Heading(text) => Line::from(Span::styled(cut(text, width), theme.header)),
            HelpLine::Item { keys, text } => {
                // A custom keymap names its keys; they are measured and escaped as drawn.
                let keys = crate::text::fit(keys, column.saturating_sub(1));
                Line::from(Span::styled(
                    cut(&format!(" {keys} {text}"), width),
                    theme.text,
                ))
            }
        })
        .collect();
    while lines.len() < visible {
        lines.push(Line::from(""));
    }
    let last = (first + visible).min(all.len());
    let footer = if all.len() > visible {
        format!(
            "lines {}–{last} of {} · j/k pgup/pgdn scroll · any other key closes",
            first + 1,
            all.len()
        )
    } else {
        "any key closes this help".to_owned()
    };
    lines.push(Line::from(Span::styled(cut(&footer, width), theme.muted)));
    frame.render_widget(paragraph(lines).block(block(theme, " Help ")), area);
}
