//! The overview: live counts, frame and error rates, and the top error codes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Sparkline;
use ratatui::Frame;

use super::{block, paragraph};
use crate::catalog::Dialect;
use crate::console::app::App;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let model = &app.model;
    let [left, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(area);
    let mut lines = vec![Line::from(Span::styled("Peers by dialect", theme.header))];
    for dialect in [
        Dialect::SignalFish,
        Dialect::Talo,
        Dialect::Flow,
        Dialect::Pubsub,
    ] {
        let count = model.peers_by_dialect.get(&dialect).copied().unwrap_or(0);
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<14}", dialect.display_name()), theme.text),
            Span::styled(format!("{count:>6}"), theme.accent),
        ]));
    }
    lines.push(Line::from(""));
    for (label, count) in [
        ("Rooms", model.rooms.len()),
        ("Channels", model.channels.len()),
        ("Subscriptions", model.subscriptions.len()),
        ("Apps", model.apps.len()),
        ("Armed faults", model.faults.len()),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<16}"), theme.text),
            Span::styled(format!("{count:>6}"), theme.accent),
        ]));
    }
    frame.render_widget(paragraph(lines).block(block(theme, " Live ")), left);

    let [frames, errors, top] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(right);
    let frame_rates: Vec<u64> = model.rates.iter().map(|(f, _)| *f).collect();
    let error_rates: Vec<u64> = model.rates.iter().map(|(_, e)| *e).collect();
    let last = |rates: &[u64]| rates.last().copied().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(block(theme, format!(" Frames/s {} ", last(&frame_rates))))
            .data(tail(&frame_rates, frames.width.saturating_sub(2) as usize))
            .style(theme.info),
        frames,
    );
    frame.render_widget(
        Sparkline::default()
            .block(block(theme, format!(" Errors/s {} ", last(&error_rates))))
            .data(tail(&error_rates, errors.width.saturating_sub(2) as usize))
            .style(theme.error),
        errors,
    );
    let mut lines = Vec::new();
    let rows = top.height.saturating_sub(2) as usize;
    for (qualified, count, entry) in model.top_errors.iter().take(rows) {
        let style = entry
            .map(|e| theme.severity(e.severity()))
            .unwrap_or(theme.text);
        lines.push(Line::from(vec![
            Span::styled(format!("{count:>6} "), theme.accent),
            Span::styled(qualified.clone(), style),
            Span::styled(
                entry
                    .map(|e| format!("  {} · {}", e.title, e.retry.id()))
                    .unwrap_or_default(),
                theme.muted,
            ),
        ]));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("no errors yet", theme.muted)));
    }
    frame.render_widget(
        paragraph(lines).block(block(theme, " Top error codes ")),
        top,
    );
}

fn tail(values: &[u64], width: usize) -> &[u64] {
    &values[values.len().saturating_sub(width)..]
}
