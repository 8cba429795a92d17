//! Triage: finding a player among live peers, rooms and the history of closed ones; what a
//! ban of a peer targets; and a pasted log's timeline tied to the peers it mentions. Pure
//! functions of the model, so the views only draw what was found here.

use std::time::Duration;

use super::model::{history_key, natural_cmp, Model};
use crate::catalog::timeline::Timeline;
use crate::catalog::{self, Dialect, Entry};
use crate::protocol::admin::{BanTarget, Closed, ClosedPeer, PeerInfo};

/// Hits kept for one search; a query matching a whole server is narrowed, not listed.
pub const MAX_HITS: usize = 500;

/// What a search or a pasted log points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A live peer, by id.
    Peer(String),
    /// A live room, by code.
    Room(String),
    /// A closed peer or room, by its history key.
    History(String),
}

impl Found {
    pub fn label(&self) -> &'static str {
        match self {
            Found::Peer(_) | Found::Room(_) => "live",
            Found::History(_) => "history",
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub found: Found,
    /// When it connected (live), opened (room) or closed (history).
    pub at_ms: u64,
    /// What it is, in one line.
    pub summary: String,
    /// Which field matched, and its value.
    pub matched: String,
    /// The whole value matched, not a part of it.
    pub exact: bool,
}

/// The results of `:find`, kept as found so that the list does not move while it is read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindResults {
    pub query: String,
    pub hits: Vec<Hit>,
    /// More matched than [`MAX_HITS`].
    pub cut: bool,
    pub selected: usize,
}

/// The close of a closed peer, decoded: `None` when the socket dropped without a code.
pub fn decode_close(dialect: Dialect, code: Option<u16>) -> Option<&'static Entry> {
    code.and_then(|code| catalog::close(dialect, code))
}

/// The catalog entry of an error code as the server reported it (a close code as digits).
pub fn decode_error(dialect: Dialect, code: &str) -> Option<&'static Entry> {
    catalog::sent(dialect, code)
}

fn peer_fields(peer: &PeerInfo) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("peer id", peer.id.clone()),
        ("address", peer.addr.clone()),
        ("dialect", peer.dialect.id().to_owned()),
    ];
    if let Some(identity) = &peer.identity {
        fields.push(("player", identity.clone()));
    }
    if let Some(app) = &peer.app {
        fields.push(("app", app.clone()));
    }
    if let Some(room) = &peer.room {
        fields.push(("room", room.clone()));
    }
    fields
}

fn closed_peer_fields(closed: &ClosedPeer) -> Vec<(&'static str, String)> {
    let mut fields = peer_fields(&closed.peer);
    for room in &closed.rooms {
        fields.push(("room", room.clone()));
    }
    for refused in &closed.refused_joins {
        if let Some(room) = &refused.room {
            fields.push(("refused room", room.clone()));
        }
        fields.push(("refused game", refused.game.clone()));
        fields.push(("error", refused.code.clone()));
    }
    if let Some(player) = &closed.player_id {
        fields.push(("player id", player.clone()));
    }
    if let Some(code) = closed.code {
        fields.push(("close code", code.to_string()));
    }
    if !closed.reason.is_empty() {
        fields.push(("close reason", closed.reason.clone()));
    }
    if let Some(entry) = decode_close(closed.peer.dialect, closed.code) {
        fields.push(("close", entry.title.to_owned()));
    }
    for error in &closed.last_errors {
        fields.push(("error", error.code.clone()));
        if let Some(entry) = decode_error(error.dialect, &error.code) {
            fields.push(("error", entry.title.to_owned()));
        }
    }
    fields
}

/// The first field containing `needle`, preferring one that is exactly it; with whether it is.
fn first_match(fields: &[(&'static str, String)], needle: &str) -> Option<(String, bool)> {
    let exact = fields
        .iter()
        .find(|(_, value)| value.to_lowercase() == needle);
    if let Some((name, value)) = exact {
        return Some((format!("{name} {value}"), true));
    }
    fields
        .iter()
        .find(|(_, value)| super::tables::contains_folded(value, needle))
        .map(|(name, value)| (format!("{name} {value}"), false))
}

/// One line about a peer: `p4 signal-fish demo Bob 127.0.0.1:50200`.
pub fn peer_summary(peer: &PeerInfo) -> String {
    format!(
        "{} {} {} {} {}",
        peer.id,
        peer.dialect.id(),
        peer.app.as_deref().unwrap_or("-"),
        peer.identity.as_deref().unwrap_or("anonymous"),
        peer.addr
    )
}

/// Search live peers, live rooms and the history together, case-insensitively, for `query`
/// as a substring of a player name, peer id, room code, app, address, close code or error
/// code or name. Live hits come first, then history, newest first.
pub fn find(model: &Model, query: &str) -> FindResults {
    let needle = query.trim().to_lowercase();
    let mut hits = Vec::new();
    if needle.is_empty() {
        return FindResults {
            query: query.to_owned(),
            ..FindResults::default()
        };
    }
    let mut cut = false;
    let mut push = |hit: Hit, hits: &mut Vec<Hit>| {
        if hits.len() < MAX_HITS {
            hits.push(hit);
        } else {
            cut = true;
        }
    };
    let mut live: Vec<&PeerInfo> = model.peers.values().collect();
    live.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    for peer in live {
        let mut fields = peer_fields(peer);
        if let Some(player) = model.player_id_of(peer) {
            fields.push(("player id", player.to_owned()));
        }
        if let Some((matched, exact)) = first_match(&fields, &needle) {
            push(
                Hit {
                    found: Found::Peer(peer.id.clone()),
                    at_ms: peer.connected_at_ms,
                    summary: peer_summary(peer),
                    matched,
                    exact,
                },
                &mut hits,
            );
        }
    }
    for room in model.rooms.values() {
        let mut fields = vec![
            ("room", room.code.clone()),
            ("app", room.app.clone()),
            ("game", room.game.clone()),
        ];
        for member in room.players.iter().chain(&room.spectators) {
            fields.push(("player", member.name.clone()));
            fields.push(("player id", member.player_id.clone()));
        }
        if let Some((matched, exact)) = first_match(&fields, &needle) {
            push(
                Hit {
                    found: Found::Room(room.code.clone()),
                    at_ms: room.created_at_ms,
                    summary: format!(
                        "room {} {} {} {}/{} players",
                        room.code,
                        room.app,
                        room.game,
                        room.players.len(),
                        room.max_players
                    ),
                    matched,
                    exact,
                },
                &mut hits,
            );
        }
    }
    for entry in model.history.iter().rev() {
        let (fields, summary) = match &entry.closed {
            Closed::Peer(closed) => (
                closed_peer_fields(closed),
                format!(
                    "{} · {}",
                    peer_summary(&closed.peer),
                    close_text(closed.code, &closed.reason)
                ),
            ),
            Closed::Room(closed) => (
                vec![
                    ("room", closed.room.code.clone()),
                    ("app", closed.room.app.clone()),
                    ("game", closed.room.game.clone()),
                    ("close reason", closed.reason.clone()),
                ],
                format!(
                    "room {} {} {} · {}",
                    closed.room.code, closed.room.app, closed.room.game, closed.reason
                ),
            ),
        };
        if let Some((matched, exact)) = first_match(&fields, &needle) {
            push(
                Hit {
                    found: Found::History(history_key(entry)),
                    at_ms: entry.closed_at_ms,
                    summary,
                    matched,
                    exact,
                },
                &mut hits,
            );
        }
    }
    // A whole value matched (`p3`, not `p30`) is what was meant: those come first, live
    // before history still. The sort is stable.
    hits.sort_by_key(|hit| !hit.exact);
    FindResults {
        query: query.to_owned(),
        hits,
        cut,
        selected: 0,
    }
}

/// `4020 admin_disconnect`, or what a dropped socket says.
pub fn close_text(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(code), true) => code.to_string(),
        (Some(code), false) => format!("{code} {reason}"),
        (None, true) => "dropped (no close frame)".to_owned(),
        // The server's words for a socket that ended without a close frame.
        (None, false) if reason == "connection dropped" => "dropped (no close frame)".to_owned(),
        // A close frame without a code (1005) is the client's clean goodbye, not a drop.
        (None, false) => match reason.strip_prefix("closed by the client") {
            Some(rest) => format!("clean close by the client{rest}"),
            None => reason.to_owned(),
        },
    }
}

/// The address part of `ip:port`, `[v6]:port` or a bare address.
pub fn ip_of(addr: &str) -> String {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match addr.rsplit_once(':') {
        // One colon: v4 with a port. More: a bare v6 address, which has no port here.
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host.to_owned()
        }
        _ => addr.to_owned(),
    }
}

/// What banning this peer bans: its identity within its app when it has one, else its IP.
pub fn ban_target(peer: &PeerInfo) -> BanTarget {
    match &peer.identity {
        Some(identity) if !identity.is_empty() => BanTarget::Identity {
            app: peer.app.clone(),
            identity: identity.clone(),
        },
        _ => BanTarget::Address {
            ip: ip_of(&peer.addr),
        },
    }
}

/// The longest ban the console asks for: the server's own limit, 90 days.
pub const MAX_BAN: Duration = Duration::from_secs(90 * 86_400);

/// `10m`, `2h`, `1d`, `1h30m` in milliseconds.
///
/// # Errors
/// Not a duration, zero, or longer than [`MAX_BAN`].
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 10m, 2h or 1d: {e}"))?;
    if duration.is_zero() {
        return Err("a ban of no time bans nothing".to_owned());
    }
    if duration > MAX_BAN {
        return Err(format!("{text} is longer than the 90 days a ban may last"));
    }
    u64::try_from(duration.as_millis()).map_err(|_| format!("{text} is too long"))
}

/// `in 59m`, `in 1d 2h`, `expired`: how long until `until_ms`, seen at `now_ms`.
pub fn until(now_ms: u64, until_ms: u64) -> String {
    if until_ms <= now_ms {
        return "expired".to_owned();
    }
    format!("in {}", span(until_ms - now_ms))
}

/// A span in its two largest units: `45s`, `12m`, `2h 5m`, `3d 4h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => match (s / 60) % 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h {m}m", s / 3600),
        },
        _ => match (s / 3600) % 24 {
            0 => format!("{}d", s / 86_400),
            h => format!("{}d {h}h", s / 86_400),
        },
    }
}

/// One decoded event of a pasted log, with the peers it points at.
#[derive(Debug, Clone, PartialEq)]
pub struct PastedEvent {
    pub line: usize,
    pub at: Option<String>,
    pub input: String,
    pub entry: Option<&'static Entry>,
    /// Correlation fields: `room`, `player`, `request`, …
    pub correlation: Vec<(String, String)>,
    /// Live and history peers (and rooms) it matches, with what matched.
    pub matches: Vec<(Found, String)>,
}

/// A pasted log read into a timeline, each event tied to what it mentions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PastedTimeline {
    pub events: Vec<PastedEvent>,
    pub lines: usize,
    pub truncated: bool,
    pub selected: usize,
}

/// Tie each event of `timeline` to the live and closed peers it names: by room code, Signal
/// Fish player id, peer id or identity.
pub fn correlate(model: &Model, timeline: &Timeline) -> PastedTimeline {
    // In id order, so that the same paste always points at the same peers first.
    let mut live: Vec<&PeerInfo> = model.peers.values().collect();
    live.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    let events = timeline
        .events
        .iter()
        .map(|event| {
            let mut matches: Vec<(Found, String)> = Vec::new();
            let mut add = |found: Found, why: String| {
                if !matches.iter().any(|(f, _)| *f == found) && matches.len() < 12 {
                    matches.push((found, why));
                }
            };
            for (name, value) in &event.correlation {
                match name.as_str() {
                    "room" => {
                        for peer in &live {
                            if peer.room.as_deref() == Some(value) {
                                add(Found::Peer(peer.id.clone()), format!("in room {value}"));
                            }
                        }
                        if model.rooms.contains_key(value) {
                            add(Found::Room(value.clone()), format!("room {value}"));
                        }
                        for entry in model.history.iter().rev() {
                            if let Closed::Peer(closed) = &entry.closed {
                                if closed.rooms.iter().any(|r| r == value)
                                    || closed.peer.room.as_deref() == Some(value)
                                {
                                    add(
                                        Found::History(history_key(entry)),
                                        format!("was in room {value}"),
                                    );
                                } else if closed
                                    .refused_joins
                                    .iter()
                                    .any(|r| r.room.as_deref() == Some(value))
                                {
                                    add(
                                        Found::History(history_key(entry)),
                                        format!("was refused room {value}"),
                                    );
                                }
                            }
                        }
                    }
                    "player" => {
                        for room in model.rooms.values() {
                            for member in room.players.iter().chain(&room.spectators) {
                                if member.player_id == *value {
                                    if let Some(peer) = &member.peer {
                                        add(Found::Peer(peer.clone()), format!("player {value}"));
                                    }
                                }
                            }
                        }
                        for entry in model.history.iter().rev() {
                            if let Closed::Peer(closed) = &entry.closed {
                                if closed.player_id.as_deref() == Some(value) {
                                    add(
                                        Found::History(history_key(entry)),
                                        format!("player {value}"),
                                    );
                                }
                            }
                        }
                    }
                    "peer" => {
                        for peer in &live {
                            if peer.id == *value || peer.identity.as_deref() == Some(value) {
                                add(Found::Peer(peer.id.clone()), format!("peer {value}"));
                            }
                        }
                        for entry in model.history.iter().rev() {
                            if let Closed::Peer(closed) = &entry.closed {
                                if closed.peer.id == *value
                                    || closed.peer.identity.as_deref() == Some(value)
                                {
                                    add(
                                        Found::History(history_key(entry)),
                                        format!("peer {value}"),
                                    );
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            PastedEvent {
                line: event.line,
                at: event.at.clone(),
                input: event.input.clone(),
                entry: event.decoding.best(),
                correlation: event
                    .correlation
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                matches,
            }
        })
        .collect();
    PastedTimeline {
        events,
        lines: timeline.lines,
        truncated: timeline.truncated,
        selected: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(ip_of("203.0.113.7:50123"), "203.0.113.7");
        assert_eq!(ip_of("[::1]:7878"), "::1");
        assert_eq!(ip_of("::1"), "::1");
        assert_eq!(ip_of("10.0.0.1"), "10.0.0.1");
        assert_eq!(ip_of(""), "");
    }

    #[test]
    fn durations_parse_and_bound() {
        assert_eq!(parse_duration("10m").unwrap(), 600_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(until(1000, 500), "expired");
        assert_eq!(until(0, 3_600_000 + 30 * 60_000), "in 1h 30m");
        assert_eq!(span(86_400_000 * 2), "2d");
    }
}
