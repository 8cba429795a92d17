//! The log pane (the live log, a peer's history, the composer's answers): newest at the
//! bottom, each error followed by its decoded title, retry policy and guidance.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{block, cut, paragraph, wrap_words};
use crate::catalog::Severity;
use crate::console::app::App;
use crate::console::keymap::Action;
use crate::console::log::{LogEntry, LogKind};
use crate::console::theme::Theme;
use crate::protocol::admin::Direction;

/// Indent of the lines that continue a log entry, under its event column.
const LOG_INDENT: &str = "         ";

use crate::console::tables::time_of;

/// The lines for one log entry: the event, and for errors the decoded title and retry policy,
/// then the guidance wrapped to `inner_width`, so that advice is never cut at the edge.
fn log_lines<'a>(
    entry: &LogEntry,
    theme: &Theme,
    width: usize,
    inner_width: usize,
) -> Vec<Line<'a>> {
    let head = vec![
        Span::styled(time_of(entry.at_ms), theme.muted),
        Span::raw(" "),
        // Padded for the usual short ids, and always followed by a space: a long id must
        // not run into the dialect.
        Span::styled(
            format!("{:<6} ", entry.peer.as_deref().unwrap_or("-")),
            theme.accent,
        ),
        Span::styled(
            format!("{:<12}", entry.dialect.map(|d| d.id()).unwrap_or("")),
            theme.muted,
        ),
    ];
    let decoded = entry.decoded();
    let mut lines = Vec::new();
    let mut spans = head;
    match &entry.kind {
        LogKind::Error {
            code,
            delivery,
            request_id,
            frame,
        } => {
            let style = decoded
                .map(|e| theme.severity(e.severity()))
                .unwrap_or(theme.error);
            spans.push(Span::styled(format!("✖ {code}"), style));
            spans.push(Span::styled(format!(" {}", delivery.id()), theme.muted));
            if let Some(id) = request_id {
                spans.push(Span::styled(format!(" req={id}"), theme.text));
            }
            spans.push(Span::styled(
                format!("  {}", cut(&crate::text::one_line(frame, width), width)),
                theme.muted,
            ));
        }
        LogKind::Closed { code, reason } => {
            let severity = decoded.map(|e| e.severity()).unwrap_or(Severity::Info);
            let text = match code {
                Some(code) => format!("⏏ closed {code} {reason}"),
                None => format!("⏏ {reason}"),
            };
            spans.push(Span::styled(text, theme.severity(severity)));
        }
        LogKind::Frame { direction, text } => {
            let arrow = match direction {
                Direction::In => "→",
                Direction::Out => "←",
            };
            spans.push(Span::styled(
                format!(
                    "{arrow} {}",
                    cut(&crate::text::one_line(text, width), width)
                ),
                theme.text,
            ));
        }
        LogKind::Notice { text, severity } => {
            spans.push(Span::styled(format!("• {text}"), theme.severity(*severity)));
        }
    }
    lines.push(Line::from(spans));
    if let Some(entry) = decoded.filter(|e| e.severity() != Severity::Info) {
        lines.push(Line::from(vec![
            Span::raw(LOG_INDENT),
            Span::styled(
                format!("{} — ", entry.title),
                theme
                    .severity(entry.severity())
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("retry: {}", entry.retry.id()), theme.accent),
        ]));
        let text_width = inner_width.saturating_sub(LOG_INDENT.len()).max(20);
        for part in wrap_words(entry.guidance, text_width) {
            lines.push(Line::from(vec![
                Span::raw(LOG_INDENT),
                Span::styled(part, theme.text),
            ]));
        }
    }
    lines
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, peer: Option<&str>, title: &str) {
    let theme = &app.theme;
    let entries = app.log_entries(peer);
    let shown_up_to = app.log.shown_up_to(&entries);
    let shown: Vec<&LogEntry> = entries
        .get(..shown_up_to)
        .unwrap_or_default()
        .iter()
        .map(|(_, e)| *e)
        .collect();
    // The newest entry on screen is the one `e` and the other log keys act on: marked as a
    // table marks its selected row.
    let mut lines = newest_lines(&shown, theme, area, true);
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "nothing yet: errors, closes and tapped frames appear here",
            theme.muted,
        )));
    }
    let filter = app.tables.filter(crate::console::app::View::Log);
    let mut title = format!(" {title} ({}) ", entries.len());
    if !filter.is_empty() {
        title.push_str(&format!("/{filter} "));
    }
    let newer = entries.len() - shown_up_to;
    if app.log.anchor.is_some() {
        let live_key = app.keymap.key_for(&Action::Bottom).unwrap_or(":log");
        title.push_str(&format!(
            "· PAUSED, {newer} newer · {live_key}: follow live "
        ));
    }
    // No wrapping: one entry is exactly its lines, and long frames are cut at the edge.
    frame.render_widget(paragraph(lines).block(block(theme, title)), area);
}

/// A fixed list of entries (a session's answers in the composer), newest at the bottom, as
/// the live log draws them.
pub fn draw_entries(app: &App, frame: &mut Frame, area: Rect, entries: &[LogEntry], title: &str) {
    let theme = &app.theme;
    let entries: Vec<&LogEntry> = entries.iter().collect();
    let mut lines = newest_lines(&entries, theme, area, false);
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "the session's steps and what its connections receive appear here",
            theme.muted,
        )));
    }
    frame.render_widget(
        paragraph(lines).block(block(theme, format!(" {title} ({}) ", entries.len()))),
        area,
    );
}

/// The lines of the newest `entries` that fit `area`, oldest first, newest at the bottom;
/// `mark_newest` highlights the newest entry's first line.
fn newest_lines<'a>(
    entries: &[&LogEntry],
    theme: &Theme,
    area: Rect,
    mark_newest: bool,
) -> Vec<Line<'a>> {
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(50).max(20) as usize;
    let inner_width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (index, entry) in entries.iter().rev().enumerate() {
        let mut entry_lines = log_lines(entry, theme, width, inner_width);
        if mark_newest && index == 0 {
            if let Some(first) = entry_lines.first_mut() {
                first.style = theme.selection;
            }
        }
        if lines.len() + entry_lines.len() > height {
            break;
        }
        entry_lines.append(&mut lines);
        lines = entry_lines;
    }
    lines
}
