//! The triage views: the history (with the selected close decoded under it), a closed peer's
//! or room's detail with the player's timeline across reconnects, the find results, the
//! pasted log's timeline, and the paste editor.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;

use super::{block, cut, paragraph, wrap_words};
use crate::catalog::{Entry, Severity};
use crate::console::app::{App, View};
use crate::console::model::{history_key, Life};
use crate::console::tables::time_of;
use crate::console::theme::Theme;
use crate::console::triage::{self, close_text, decode_close, decode_error, span};
use crate::protocol::admin::{Closed, ClosedPeer, ClosedRoom, HistoryEntry};

/// The decoded lines of a catalog entry as the log shows them: title and retry policy, then
/// what it means and what to do, wrapped to `width`.
fn entry_lines<'a>(
    entry: &'static Entry,
    theme: &Theme,
    width: usize,
    meaning: bool,
) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(vec![
        Span::raw("  "),
        Span::styled(
            format!("{} — {} — ", entry.qualified(), entry.title),
            theme
                .severity(entry.severity())
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("retry: {}", entry.retry.id()), theme.accent),
    ])];
    let width = width.saturating_sub(4).max(20);
    if meaning {
        for part in wrap_words(entry.meaning, width) {
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(part, theme.text),
            ]));
        }
    }
    for part in wrap_words(&format!("Do: {}", entry.guidance), width) {
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(part, theme.muted),
        ]));
    }
    lines
}

/// A closed peer's close and last errors, decoded.
fn close_lines<'a>(
    closed: &ClosedPeer,
    theme: &Theme,
    width: usize,
    meaning: bool,
) -> Vec<Line<'a>> {
    let dialect = closed.peer.dialect;
    let mut lines = vec![Line::from(vec![
        Span::styled("Close ", theme.header),
        Span::styled(close_text(closed.code, &closed.reason), theme.text),
    ])];
    match decode_close(dialect, closed.code) {
        Some(entry) => lines.extend(entry_lines(entry, theme, width, meaning)),
        None if closed.code.is_some() => lines.push(Line::from(Span::styled(
            "  not in the catalog for this dialect",
            theme.muted,
        ))),
        None => {}
    }
    if !closed.last_errors.is_empty() {
        lines.push(Line::from(Span::styled("Last errors", theme.header)));
        for error in &closed.last_errors {
            let decoded = decode_error(error.dialect, &error.code);
            let title = decoded
                .map(|e| format!(" — {} · retry: {}", e.title, e.retry.id()))
                .unwrap_or_default();
            let style = decoded
                .map(|e| theme.severity(e.severity()))
                .unwrap_or(theme.error);
            lines.push(Line::from(vec![
                Span::styled(format!("  {} ", time_of(error.at_ms)), theme.muted),
                Span::styled(
                    cut(
                        &format!("✖ {}{title}", error.code),
                        width.saturating_sub(12),
                    ),
                    style,
                ),
            ]));
        }
    }
    lines
}

/// The history table, and under it the selected entry's close, decoded.
pub fn draw_history(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let [table, preview] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(7)]).areas(area);
    super::table::draw(app, frame, table, View::History);
    let width = preview.width.saturating_sub(2) as usize;
    let entry = app
        .selected_key(View::History)
        .and_then(|key| app.model.history_entry(&key));
    let lines = match entry.map(|e| &e.closed) {
        Some(Closed::Peer(closed)) => close_lines(closed, theme, width, false),
        Some(Closed::Room(closed)) => vec![Line::from(format!(
            "room {} ({} in {}) closed: {}",
            closed.room.code, closed.room.game, closed.room.app, closed.reason
        ))],
        None => vec![Line::from(Span::styled(
            "peers and rooms appear here when they close",
            theme.muted,
        ))],
    };
    frame.render_widget(
        paragraph(lines).block(block(theme, " Selected close ")),
        preview,
    );
}

/// A closed peer or room: its close and last errors decoded, and the player's timeline.
pub fn draw_history_detail(app: &App, frame: &mut Frame, area: Rect, key: &str) {
    let theme = &app.theme;
    let Some(entry) = app.model.history_entry(key) else {
        frame.render_widget(
            paragraph(Span::styled(
                format!("{key} is no longer in the server's history"),
                theme.warning,
            ))
            .block(block(theme, format!(" Closed {key} "))),
            area,
        );
        return;
    };
    match &entry.closed {
        Closed::Peer(closed) => draw_closed_peer(app, frame, area, entry, closed),
        Closed::Room(closed) => draw_closed_room(app, frame, area, entry, closed),
    }
}

fn draw_closed_peer(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    entry: &HistoryEntry,
    closed: &ClosedPeer,
) {
    let theme = &app.theme;
    let p = &closed.peer;
    let lives = app.model.player_timeline(p, closed.player_id.as_deref());
    let timeline_height = u16::try_from(lives.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2)
        .min(area.height / 2)
        .max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(timeline_height)]).areas(area);
    let width = top.width.saturating_sub(2) as usize;
    let mut rooms = closed.rooms.clone();
    if let Some(room) = &p.room {
        if !rooms.contains(room) {
            rooms.push(room.clone());
        }
    }
    let mut lines = vec![
        Line::from(format!(
            "{} · {} · app {} · {} · {}",
            p.id,
            p.dialect.display_name(),
            p.app.as_deref().unwrap_or("none"),
            p.identity.as_deref().unwrap_or("anonymous"),
            p.addr
        )),
        Line::from(Span::styled(
            cut(
                &format!(
                    "connected {} · closed {} after {} · rooms {} · player {}",
                    time_of(p.connected_at_ms),
                    time_of(entry.closed_at_ms),
                    span(entry.closed_at_ms.saturating_sub(p.connected_at_ms)),
                    if rooms.is_empty() {
                        "—".to_owned()
                    } else {
                        rooms.join(" ")
                    },
                    closed.player_id.as_deref().unwrap_or("—"),
                ),
                width,
            ),
            theme.muted,
        )),
        Line::from(Span::styled(
            format!(
                "frames in {} · out {} · errors {} · {} still in the flight recorder",
                p.frames_in, p.frames_out, p.errors, closed.recorded_frames
            ),
            theme.muted,
        )),
    ];
    if !closed.refused_joins.is_empty() {
        let asked: Vec<String> = closed
            .refused_joins
            .iter()
            .map(|r| match &r.room {
                Some(room) => format!("room {room} of {} ({})", r.game, r.code),
                None => format!("a room of {} ({})", r.game, r.code),
            })
            .collect();
        lines.push(Line::from(Span::styled(
            cut(&format!("refused joins: {}", asked.join(", ")), width),
            theme.warning,
        )));
    }
    lines.extend(close_lines(closed, theme, width, true));
    frame.render_widget(
        paragraph(lines).block(block(theme, format!(" Closed peer {} ", p.id))),
        top,
    );
    draw_lives(
        app,
        frame,
        bottom,
        &lives,
        &p.id,
        closed.player_id.as_deref(),
    );
}

/// One player's connections in time order, the one on screen marked.
fn draw_lives(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    lives: &[Life<'_>],
    current: &str,
    player_id: Option<&str>,
) {
    let theme = &app.theme;
    let width = area.width.saturating_sub(2) as usize;
    let visible = area.height.saturating_sub(2) as usize;
    let at = lives
        .iter()
        .position(|l| l.peer().id == current)
        .unwrap_or(0);
    let first = at.saturating_sub(visible.saturating_sub(1));
    let lines: Vec<Line> = lives
        .iter()
        .skip(first)
        .take(visible)
        .map(|life| {
            let peer = life.peer();
            let (span_text, close, severity) = match life {
                Life::Live(_) => (
                    format!("{}–now     ", time_of(peer.connected_at_ms)),
                    format!(
                        "live{}",
                        peer.room
                            .as_deref()
                            .map(|r| format!(" in {r}"))
                            .unwrap_or_default()
                    ),
                    Severity::Info,
                ),
                Life::Closed {
                    closed_at_ms,
                    peer: closed,
                } => {
                    let decoded = decode_close(peer.dialect, closed.code);
                    (
                        format!(
                            "{}–{}",
                            time_of(peer.connected_at_ms),
                            time_of(*closed_at_ms)
                        ),
                        format!(
                            "{}{}{}",
                            close_text(closed.code, &closed.reason),
                            decoded
                                .filter(|e| e.title != closed.reason)
                                .map(|e| format!(" ({})", e.title))
                                .unwrap_or_default(),
                            if closed.rooms.is_empty() {
                                String::new()
                            } else {
                                format!(" · {}", closed.rooms.join(" "))
                            }
                        ),
                        decoded.map(|e| e.severity()).unwrap_or(Severity::Info),
                    )
                }
            };
            let marker = if peer.id == current { "▶" } else { " " };
            let text = format!(
                "{marker} {span_text} {:<6} {} {close}",
                peer.id,
                crate::text::fit(peer.identity.as_deref().unwrap_or("anonymous"), 10)
            );
            let style = if peer.id == current {
                theme.accent
            } else {
                theme.severity(severity)
            };
            Line::from(Span::styled(cut(&text, width), style))
        })
        .collect();
    let who = match (
        lives.iter().find_map(|l| l.peer().identity.clone()),
        player_id,
    ) {
        (Some(identity), Some(player)) => format!("{identity} / player {player}"),
        (Some(identity), None) => identity,
        (None, Some(player)) => format!("player {player}"),
        (None, None) => "this connection".to_owned(),
    };
    frame.render_widget(
        paragraph(lines).block(block(
            theme,
            format!(
                " Timeline of {} across reconnects ({}) ",
                cut(&who, 30),
                lives.len()
            ),
        )),
        area,
    );
}

fn draw_closed_room(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    entry: &HistoryEntry,
    closed: &ClosedRoom,
) {
    let theme = &app.theme;
    let room = &closed.room;
    let mut lines = vec![
        Line::from(format!(
            "{} · game {} · app {} · {} · {}/{} players",
            room.code,
            room.game,
            room.app,
            room.lobby_state,
            room.players.len(),
            room.max_players
        )),
        Line::from(format!(
            "opened {} · closed {} after {} · {}",
            time_of(room.created_at_ms),
            time_of(entry.closed_at_ms),
            span(entry.closed_at_ms.saturating_sub(room.created_at_ms)),
            closed.reason
        )),
        Line::from(Span::styled("Players when it closed", theme.header)),
    ];
    for player in &room.players {
        lines.push(Line::from(format!(
            "  {} ({}) {}",
            player.name,
            player.player_id,
            player.peer.as_deref().unwrap_or("disconnected")
        )));
    }
    let peers: Vec<String> = app
        .model
        .history
        .iter()
        .filter_map(|h| match &h.closed {
            Closed::Peer(p) if p.rooms.contains(&room.code) => Some(history_key(h)),
            _ => None,
        })
        .collect();
    if !peers.is_empty() {
        lines.push(Line::from(Span::styled(
            "Closed peers that were in it",
            theme.header,
        )));
        lines.push(Line::from(format!("  {}", peers.join(" "))));
    }
    frame.render_widget(
        paragraph(lines).block(block(theme, format!(" Closed room {} ", room.code))),
        area,
    );
}

/// A window of `count` items of `height` lines each around `selected`.
fn window(selected: usize, count: usize, rows: usize, height: usize) -> (usize, usize) {
    let fits = (rows / height.max(1)).max(1);
    let first = selected
        .min(count.saturating_sub(1))
        .saturating_sub(fits - 1);
    (first, fits)
}

pub fn draw_find(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let find = &app.find;
    let width = area.width.saturating_sub(2) as usize;
    let (first, fits) = window(
        find.selected,
        find.hits.len(),
        area.height.saturating_sub(2) as usize,
        1,
    );
    let mut lines: Vec<Line> = find
        .hits
        .iter()
        .enumerate()
        .skip(first)
        .take(fits)
        .map(|(index, hit)| {
            let text = format!(
                "{:<7} {} {}  ← {}",
                hit.found.label(),
                time_of(hit.at_ms),
                hit.summary,
                hit.matched
            );
            let style = if index == find.selected {
                theme.selection
            } else if hit.found.label() == "live" {
                theme.text
            } else {
                theme.muted
            };
            Line::from(Span::styled(cut(&text, width), style))
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "nothing matched: names, peer ids, room codes, apps, addresses, close and error codes are searched",
            theme.muted,
        )));
    }
    let more = if find.cut { "+" } else { "" };
    frame.render_widget(
        paragraph(lines).block(block(
            theme,
            format!(
                " Find {:?} ({}{more}) · ⏎ opens ",
                find.query,
                find.hits.len()
            ),
        )),
        area,
    );
}

pub fn draw_timeline(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let timeline = &app.timeline;
    let width = area.width.saturating_sub(2) as usize;
    const HEIGHT: usize = 3;
    let (first, fits) = window(
        timeline.selected,
        timeline.events.len(),
        area.height.saturating_sub(2) as usize,
        HEIGHT,
    );
    let mut lines = Vec::new();
    for (index, event) in timeline.events.iter().enumerate().skip(first).take(fits) {
        let selected = index == timeline.selected;
        let (code, title, style) = match event.entry {
            Some(entry) => (
                entry.qualified(),
                format!("{} · retry: {}", entry.title, entry.retry.id()),
                theme.severity(entry.severity()),
            ),
            None => ("?".to_owned(), String::new(), theme.muted),
        };
        let head = format!(
            "{} line {:<4} {} ✖ {code} — {title}",
            if selected { "▶" } else { " " },
            event.line,
            crate::text::fit(event.at.as_deref().unwrap_or_default(), 12),
        );
        lines.push(Line::from(Span::styled(
            cut(&head, width),
            if selected { theme.selection } else { style },
        )));
        let fields: Vec<String> = event
            .correlation
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let matches: Vec<String> = event
            .matches
            .iter()
            .map(|(found, why)| {
                let id = match found {
                    triage::Found::Peer(id) | triage::Found::Room(id) => id.clone(),
                    triage::Found::History(key) => key.clone(),
                };
                format!("{id} ({}, {why})", found.label())
            })
            .collect();
        let tied = match (fields.is_empty(), matches.is_empty()) {
            (true, _) => "no correlation fields".to_owned(),
            (false, true) => format!("{} → no live or closed peer matches", fields.join(" ")),
            (false, false) => format!("{} → {}", fields.join(" "), matches.join(" ")),
        };
        lines.push(Line::from(Span::styled(
            cut(&format!("    {tied}"), width),
            theme.accent,
        )));
        let advice = event
            .entry
            .map(|e| format!("    {}", e.guidance))
            .unwrap_or_default();
        lines.push(Line::from(Span::styled(cut(&advice, width), theme.muted)));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "no catalogued error or close in the pasted log (:paste to try another)",
            theme.muted,
        )));
    }
    let cut_note = if timeline.truncated { ", cut" } else { "" };
    frame.render_widget(
        paragraph(lines).block(block(
            theme,
            format!(
                " Pasted log: {} event(s) in {} line(s){cut_note} · ⏎ opens the peer ",
                timeline.events.len(),
                timeline.lines
            ),
        )),
        area,
    );
}

pub fn draw_paste(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    frame.render_widget(Clear, area);
    let outer = block(
        theme,
        " Paste a player's log · ctrl-s reads it · esc cancels ",
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    frame.render_widget(&app.paste, inner);
    // A pasted log keeps its bytes for the parser (colour codes included); the editor's cells
    // show them as symbols.
    super::neutralise(frame.buffer_mut(), inner);
}
