//! The two top lines: the view tabs, and the server and connection line.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::paragraph;
use crate::console::app::{App, Connection, View};
use crate::protocol::admin::AppStatus;

pub fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    // The name goes first when there is room for it; the view tabs always fit in 80 columns.
    let mut spans = Vec::new();
    if area.width >= 90 {
        spans.push(Span::styled(" relaydeck", theme.title));
    }
    spans.push(Span::raw(" "));
    for (index, view) in View::ALL.iter().enumerate() {
        let label = format!("{} {}", index + 1, view.title());
        let style = if *view == app.view {
            theme.selection
        } else {
            theme.muted
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(paragraph(Line::from(spans)), area);
}

pub fn draw_info(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let line = match &app.connection {
        Connection::Lost { error, retry_in_ms, attempt } => Line::from(Span::styled(
            format!(
                " CONNECTION LOST: {error} — retry {attempt} in {:.1} s; the views show the last known state ",
                *retry_in_ms as f64 / 1000.0
            ),
            theme.banner,
        )),
        Connection::Connecting => Line::from(Span::styled(" connecting… ", theme.warning)),
        Connection::Connected => {
            let model = &app.model;
            let readonly = if app.readonly { " · READ-ONLY" } else { "" };
            let synced = if model.synced { "" } else { " · resynchronising" };
            let mut spans = vec![
                Span::styled(format!(" {} ", model.server.listen), theme.accent),
                Span::styled(
                    format!(
                        "v{} · {} peers · {} rooms · {} channels · {} apps{readonly}{synced}",
                        model.server.version,
                        model.peers.len(),
                        model.rooms.len(),
                        model.channels.len(),
                        model.apps.len()
                    ),
                    theme.muted,
                ),
            ];
            // An app left suspended (a status kept from an earlier run) refuses every client
            // of it; say so where it cannot be missed, or its refusals look like an outage.
            let suspended: Vec<&str> = model
                .apps
                .iter()
                .filter(|a| a.status == AppStatus::Suspended)
                .map(|a| a.id.as_str())
                .collect();
            if !suspended.is_empty() {
                // Before the counts, so that 80 columns still show it.
                spans.insert(
                    1,
                    Span::styled(
                        format!("SUSPENDED {} (:activate) ", suspended.join(", ")),
                        theme.warning,
                    ),
                );
            }
            Line::from(spans)
        }
    };
    frame.render_widget(paragraph(line), area);
}
