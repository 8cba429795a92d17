//! The confirmation dialog in front of every admin action.

use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;

use super::{block, centered, inner_width, wrapped_paragraph};
use crate::console::theme::Theme;

pub fn draw(theme: &Theme, frame: &mut Frame, question: &str) {
    let area = centered(frame.area(), 64, 7);
    frame.render_widget(Clear, area);
    let lines = vec![
        Line::from(question.to_owned()),
        Line::from(""),
        Line::from(vec![
            Span::styled("[y]", theme.accent),
            Span::raw(" do it    "),
            Span::styled("[n]", theme.accent),
            Span::raw(" cancel"),
        ]),
    ];
    frame.render_widget(
        wrapped_paragraph(lines, inner_width(area), true)
            .block(block(theme, " Confirm ").border_style(theme.warning)),
        area,
    );
}
