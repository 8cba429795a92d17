//! A detail: one peer (with its history from the log), room, channel or catalog code.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{block, inner_width, paragraph, wrapped_paragraph};
use crate::console::app::{App, Detail};
use crate::console::keymap::Action;
use crate::console::model::lookup_qualified;

pub fn draw(app: &App, frame: &mut Frame, area: Rect, shown: &Detail) {
    let theme = &app.theme;
    match shown.clone() {
        Detail::Peer(id) => {
            let [head, log] =
                Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
            let text = match app.model.peer(&id) {
                Some(p) => vec![
                    Line::from(format!(
                        "{} · {} · app {} · {} · {}",
                        p.id,
                        p.dialect.display_name(),
                        p.app.as_deref().unwrap_or("none"),
                        p.identity.as_deref().unwrap_or("anonymous"),
                        p.addr
                    )),
                    Line::from(format!(
                        "frames in {} · out {} · errors {} · room {}{} · connected {}",
                        p.frames_in,
                        p.frames_out,
                        p.errors,
                        p.room.as_deref().unwrap_or("—"),
                        if p.probe { " · probe" } else { "" },
                        age(app.model.server_ms, p.connected_at_ms)
                    )),
                    Line::from(format!(
                        "round trip {} · dropped {}",
                        round_trip(p.round_trip_us, p.dialect),
                        match p.frames_dropped {
                            0 => "0 frames".to_owned(),
                            n => format!("{n} relayed frames (it fell behind)"),
                        }
                    )),
                ],
                None => vec![Line::from(Span::styled(
                    format!("{id} has disconnected; its history follows"),
                    theme.warning,
                ))],
            };
            frame.render_widget(
                paragraph(text).block(block(theme, format!(" Peer {id} "))),
                head,
            );
            let tap_key = app.keymap.key_for(&Action::TAP).unwrap_or(":tap");
            let title = if app.is_tapped(&id) {
                format!("Frames and errors (tapped; {tap_key} stops)")
            } else {
                format!("Frames and errors ({tap_key} taps its frames)")
            };
            super::log::draw(app, frame, log, Some(&id), &title);
        }
        Detail::Room(code) => {
            let mut lines = Vec::new();
            match app.model.rooms.get(&code) {
                Some(room) => {
                    lines.push(Line::from(format!(
                        "{} · game {} · app {} · {} · {}/{} players",
                        room.code,
                        room.game,
                        room.app,
                        room.lobby_state,
                        room.players.len(),
                        room.max_players
                    )));
                    lines.push(Line::from(Span::styled("Players", theme.header)));
                    for player in &room.players {
                        let authority = if room.authority.as_deref() == Some(&player.player_id) {
                            " ★ authority"
                        } else {
                            ""
                        };
                        let ready = if player.ready { " ready" } else { "" };
                        let peer = player.peer.as_deref().unwrap_or("disconnected");
                        lines.push(Line::from(format!(
                            "  {} ({}) {peer}{ready}{authority}",
                            player.name, player.player_id
                        )));
                    }
                    lines.push(Line::from(Span::styled("Spectators", theme.header)));
                    for spectator in &room.spectators {
                        lines.push(Line::from(format!(
                            "  {} {}",
                            spectator.name,
                            spectator.peer.as_deref().unwrap_or("")
                        )));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    format!("room {code} has closed"),
                    theme.warning,
                ))),
            }
            frame.render_widget(
                paragraph(lines).block(block(theme, format!(" Room {code} "))),
                area,
            );
        }
        Detail::Channel(dialect, app_id, name) => {
            let mut lines = Vec::new();
            match app
                .model
                .channels
                .get(&(dialect, app_id.clone(), name.clone()))
            {
                Some(channel) => {
                    lines.push(Line::from(format!(
                        "{} · app {} · {} messages",
                        dialect.display_name(),
                        app_id,
                        channel.messages
                    )));
                    lines.push(Line::from(Span::styled("Members", theme.header)));
                    for member in &channel.members {
                        let identity = app
                            .model
                            .peer(member)
                            .and_then(|p| p.identity.clone())
                            .unwrap_or_default();
                        lines.push(Line::from(format!("  {member} {identity}")));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    "the channel has no members any more",
                    theme.warning,
                ))),
            }
            frame.render_widget(
                paragraph(lines).block(block(theme, format!(" Channel {name} "))),
                area,
            );
        }
        // Drawn by the triage pane before this one is asked.
        Detail::History(key) => super::triage::draw_history_detail(app, frame, area, &key),
        shown @ (Detail::Entry { .. } | Detail::Frames { .. }) => {
            super::frames::draw(app, frame, area, &shown)
        }
        Detail::Code(qualified) => {
            let entry = lookup_qualified(&qualified);
            let lines = match entry {
                Some(e) => vec![
                    Line::from(Span::styled(
                        format!("{} — {}", e.qualified(), e.title),
                        theme.severity(e.severity()),
                    )),
                    Line::from(format!(
                        "{} · {} · {}",
                        e.delivery.id(),
                        e.category.id(),
                        e.status.map(|s| format!("HTTP {s}")).unwrap_or_default()
                    )),
                    Line::from(""),
                    Line::from(e.meaning),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled("Retry: ", theme.header),
                        Span::raw(format!("{} — {}", e.retry.id(), e.retry.summary())),
                    ]),
                    Line::from(vec![
                        Span::styled("Do: ", theme.header),
                        Span::raw(e.guidance),
                    ]),
                    Line::from(""),
                    Line::from(Span::styled("Example", theme.header)),
                    Line::from(e.example),
                ],
                None => vec![Line::from(qualified.clone())],
            };
            frame.render_widget(
                wrapped_paragraph(lines, inner_width(area), false).block(block(theme, " Code ")),
                area,
            );
        }
    }
}

/// `3m 12s ago`: how long before the server's clock `since_ms` was, to the second (the
/// server's clock, so that a console with a skewed clock still agrees with the server).
fn age(now_ms: u64, since_ms: u64) -> String {
    if since_ms == 0 || since_ms > now_ms {
        return "just now".to_owned();
    }
    let seconds = (now_ms - since_ms) / 1000;
    let text = humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string();
    if seconds == 0 {
        "just now".to_owned()
    } else {
        format!("{text} ago")
    }
}

/// A peer's last measured round trip, or why there is none.
fn round_trip(micros: Option<u64>, dialect: crate::catalog::Dialect) -> String {
    use crate::catalog::Dialect;
    match micros {
        Some(us) if us < 10_000 => format!("{:.1} ms", us as f64 / 1000.0),
        Some(us) => format!("{} ms", us / 1000),
        None if matches!(dialect, Dialect::Flow | Dialect::Talo) => "— (no pong yet)".to_owned(),
        // Signal Fish and pub/sub clients ping the server; the server does not ping them.
        None => "— (not pinged)".to_owned(),
    }
}
