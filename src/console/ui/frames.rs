//! Whole frames: one log entry in full, and a peer's recorded frames with the selected one in
//! full under them. Long frames wrap rather than stop at the edge.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{block, cut, inner_width, paragraph, wrapped_paragraph};
use crate::console::app::{App, Detail};
use crate::console::frames::{entry_text, readable};
use crate::console::keymap::Action;
use crate::console::tables::time_of;
use crate::protocol::admin::Direction;

pub fn draw(app: &App, frame: &mut Frame, area: Rect, shown: &Detail) {
    match shown {
        Detail::Entry { number, .. } => draw_entry(app, frame, area, *number),
        Detail::Frames { .. } => draw_recorded(app, frame, area),
        _ => {}
    }
}

fn copy_hint(app: &App) -> String {
    let copy = app.keymap.key_for(&Action::Copy).unwrap_or("y");
    let back = app.keymap.key_for(&Action::Back).unwrap_or("esc");
    format!("{copy}: copy · {back}: back")
}

fn body_lines(text: &str) -> Vec<Line<'static>> {
    readable(text)
        .lines()
        .map(|line| Line::from(line.to_owned()))
        .collect()
}

fn draw_entry(app: &App, frame: &mut Frame, area: Rect, number: u64) {
    let theme = &app.theme;
    let Some(entry) = app.log.get(number) else {
        frame.render_widget(
            paragraph(Line::from(Span::styled(
                "this entry has left the log (it keeps the newest entries only)",
                theme.warning,
            )))
            .block(block(theme, " Log entry ")),
            area,
        );
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(time_of(entry.at_ms), theme.muted),
        Span::raw(" "),
        Span::styled(
            entry.peer.clone().unwrap_or_else(|| "-".into()),
            theme.accent,
        ),
        Span::raw(" "),
        Span::styled(
            entry.dialect.map(|d| d.id()).unwrap_or("").to_owned(),
            theme.muted,
        ),
    ])];
    if let Some(decoded) = entry.decoded() {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} — {}", decoded.qualified(), decoded.title),
                theme.severity(decoded.severity()),
            ),
            Span::styled(format!(" · retry: {}", decoded.retry.id()), theme.accent),
        ]));
        lines.push(Line::from(Span::styled(decoded.guidance, theme.text)));
    }
    lines.push(Line::from(""));
    lines.extend(body_lines(&entry_text(entry)));
    frame.render_widget(
        wrapped_paragraph(lines, inner_width(area), false)
            .block(block(theme, format!(" Log entry · {} ", copy_hint(app)))),
        area,
    );
}

fn draw_recorded(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let recorded = &app.recorded;
    let [list, whole] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4)]).areas(area);
    let height = list.height.saturating_sub(2) as usize;
    let width = list.width.saturating_sub(2) as usize;
    // Keep the selection on screen; only the rows on screen are built.
    let first = recorded.selected.saturating_sub(height.saturating_sub(1));
    let mut rows: Vec<Line> = recorded
        .frames
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(index, recorded_frame)| {
            let arrow = match recorded_frame.direction {
                Direction::In => "→",
                Direction::Out => "←",
            };
            let text = format!(
                "{} {arrow} {}",
                time_of(recorded_frame.at_ms),
                crate::text::one_line(&recorded_frame.text, width.saturating_sub(12))
            );
            let style = if index == recorded.selected {
                theme.selection
            } else {
                theme.text
            };
            Line::from(Span::styled(cut(&text, width), style))
        })
        .collect();
    if rows.is_empty() {
        rows.push(Line::from(Span::styled(
            "the flight recorder holds no frames of this peer (is the recorder on?)",
            theme.muted,
        )));
    }
    let title = format!(
        " Recorded frames of {} ({}) · → from the peer, ← to it ",
        recorded.peer,
        recorded.frames.len()
    );
    frame.render_widget(paragraph(rows).block(block(theme, title)), list);
    let lines = recorded
        .selected_frame()
        .map(|f| body_lines(&f.text))
        .unwrap_or_default();
    frame.render_widget(
        wrapped_paragraph(lines, inner_width(whole), false)
            .block(block(theme, format!(" Frame · {} ", copy_hint(app)))),
        whole,
    );
}
