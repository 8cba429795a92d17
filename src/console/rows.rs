//! The rows of each table view, projected from the model: every key in natural order, and
//! the row of one key. The view table ([`super::views`]) names which functions a view uses.

use super::detail::Detail;
use super::model::{lookup_qualified, Model};
use crate::catalog::{self, Severity};
use crate::protocol::admin::{AppStatus, BanInfo, Closed, HistoryEntry, PeerInfo, RoomInfo};

/// One table row: a key identifying the object, the cells, and how loud to show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub cells: Vec<String>,
    pub severity: Option<Severity>,
}

/// `14:02:11`: the time of day (UTC) of a moment, as the log shows it.
pub fn time_of(at_ms: u64) -> String {
    let seconds = (at_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

pub fn history_row(entry: &HistoryEntry) -> Row {
    let key = super::model::history_key(entry);
    match &entry.closed {
        Closed::Peer(closed) => {
            let p = &closed.peer;
            let decoded = super::triage::decode_close(p.dialect, closed.code);
            let mut rooms = closed.rooms.clone();
            if let Some(room) = &p.room {
                if !rooms.contains(room) {
                    rooms.push(room.clone());
                }
            }
            // The reason as sent; when the server sent none, the catalog's name for the code.
            let close = match decoded {
                Some(entry) if closed.reason.is_empty() => {
                    format!("{} {}", entry.code, entry.title)
                }
                _ => super::triage::close_text(closed.code, &closed.reason),
            };
            Row {
                key,
                cells: vec![
                    time_of(entry.closed_at_ms),
                    p.id.clone(),
                    p.dialect.id().to_owned(),
                    p.app.clone().unwrap_or_default(),
                    p.identity.clone().unwrap_or_default(),
                    rooms.join(" "),
                    close,
                    closed
                        .last_errors
                        .iter()
                        .map(|e| e.code.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    p.addr.clone(),
                ],
                severity: decoded
                    .map(|e| e.severity())
                    .filter(|s| *s != Severity::Info)
                    .or_else(|| (!closed.last_errors.is_empty()).then_some(Severity::Warning)),
            }
        }
        Closed::Room(closed) => Row {
            key,
            cells: vec![
                time_of(entry.closed_at_ms),
                "room".to_owned(),
                "signal-fish".to_owned(),
                closed.room.app.clone(),
                String::new(),
                closed.room.code.clone(),
                closed.reason.clone(),
                String::new(),
                String::new(),
            ],
            severity: None,
        },
    }
}

pub fn ban_row(ban: &BanInfo, now_ms: u64) -> Row {
    Row {
        key: ban.id.to_string(),
        cells: vec![
            ban.id.to_string(),
            ban.target.describe(),
            super::triage::until(now_ms, ban.until_ms),
            ban.reason.clone(),
            ban.by.clone(),
        ],
        severity: (ban.until_ms <= now_ms).then_some(Severity::Info),
    }
}

/// A cluster node: dead or cut off from Redis shows as an error, this console's own node is
/// marked.
pub fn node_row(node: &super::model::NodeRow, now_ms: u64) -> Row {
    let info = &node.info;
    let state = match (info.alive, info.local) {
        (true, true) => "this",
        (true, false) => "alive",
        (false, _) => "gone",
    };
    let rate = |r: Option<u64>| r.map(|r| r.to_string()).unwrap_or_else(|| "…".to_owned());
    let age_ms = now_ms.saturating_sub(info.heartbeat_at_ms);
    Row {
        key: info.node_id.clone(),
        cells: vec![
            info.node_id.clone(),
            state.to_owned(),
            info.listen.clone(),
            info.peers.to_string(),
            rate(node.frames_per_s),
            rate(node.errors_per_s),
            if info.redis_ok { "ok" } else { "lost" }.to_owned(),
            if info.heartbeat_at_ms == 0 {
                "never".to_owned()
            } else {
                format!("{:.1} s ago", age_ms as f64 / 1000.0)
            },
        ],
        severity: (!info.alive || !info.redis_ok).then_some(Severity::Error),
    }
}

pub fn peer_cell(p: &PeerInfo, column: usize) -> String {
    match column {
        0 => p.id.clone(),
        1 => p.dialect.id().to_owned(),
        2 => p.app.clone().unwrap_or_default(),
        3 => p.identity.clone().unwrap_or_default(),
        4 => p.room.clone().unwrap_or_default(),
        5 => p.frames_in.to_string(),
        6 => p.frames_out.to_string(),
        7 => p.errors.to_string(),
        8 => p.addr.clone(),
        _ => String::new(),
    }
}

pub fn peer_row(p: &PeerInfo) -> Row {
    Row {
        key: p.id.clone(),
        cells: (0..9).map(|c| peer_cell(p, c)).collect(),
        severity: (p.errors > 0).then_some(Severity::Warning),
    }
}

pub fn room_row(r: &RoomInfo) -> Row {
    Row {
        key: r.code.clone(),
        cells: vec![
            r.code.clone(),
            r.app.clone(),
            r.game.clone(),
            players_cell(r),
            r.spectators.len().to_string(),
            r.lobby_state.clone(),
            r.authority
                .as_ref()
                .map(|id| {
                    r.players
                        .iter()
                        .find(|p| p.player_id == *id)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| id.clone())
                })
                .unwrap_or_else(|| "—".to_owned()),
        ],
        severity: None,
    }
}

/// `2/4`: players connected of the room's size; seats held for players who may come back
/// (Signal Fish reconnection) are counted apart, since nobody is playing in them now.
fn players_cell(room: &RoomInfo) -> String {
    let held = room.players.iter().filter(|p| p.peer.is_none()).count();
    let connected = room.players.len() - held;
    if held == 0 {
        format!("{connected}/{}", room.max_players)
    } else {
        format!("{connected}/{} +{held} held", room.max_players)
    }
}

/// The key of a channel row.
pub fn channel_key(dialect: &str, app: &str, name: &str) -> String {
    format!("{dialect}/{app}/{name}")
}

/// Every key of a table in natural order, with its position where the natural order is the
/// server's own (apps as configured, catalog entries by search rank); some take the filter.
pub type Keys = fn(&Model, &str) -> Vec<(String, Option<u64>)>;
/// The row of one key, if it still exists.
pub type RowOf = fn(&Model, &str) -> Option<Row>;
/// What opening a row shows, if anything.
pub type Opens = fn(&Model, &str) -> Option<Detail>;

pub fn opens_nothing(_model: &Model, _key: &str) -> Option<Detail> {
    None
}

pub fn open_peer(_model: &Model, key: &str) -> Option<Detail> {
    Some(Detail::Peer(key.to_owned()))
}

pub fn open_room(_model: &Model, key: &str) -> Option<Detail> {
    Some(Detail::Room(key.to_owned()))
}

pub fn open_channel(model: &Model, key: &str) -> Option<Detail> {
    model
        .channels
        .keys()
        .find(|(d, a, n)| channel_key(d.id(), a, n) == key)
        .map(|(d, a, n)| Detail::Channel(*d, a.clone(), n.clone()))
}

/// A subscription opens its peer.
pub fn open_subscription(_model: &Model, key: &str) -> Option<Detail> {
    key.split_once('\u{1f}')
        .map(|(peer, _)| Detail::Peer(peer.to_owned()))
}

pub fn open_code(_model: &Model, key: &str) -> Option<Detail> {
    lookup_qualified(key).map(|e| Detail::Code(e.qualified()))
}

pub fn open_history(_model: &Model, key: &str) -> Option<Detail> {
    Some(Detail::History(key.to_owned()))
}

// The peers' index is built straight from the model (see `tables::Order::build`).
pub fn peer_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model.peers.keys().map(|k| (k.clone(), None)).collect()
}

pub fn peer_of(model: &Model, key: &str) -> Option<Row> {
    model.peer(key).map(peer_row)
}

pub fn room_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model.rooms.keys().map(|k| (k.clone(), None)).collect()
}

pub fn room_of(model: &Model, key: &str) -> Option<Row> {
    model.rooms.get(key).map(room_row)
}

pub fn channel_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .channels
        .keys()
        .map(|(d, a, n)| (channel_key(d.id(), a, n), None))
        .collect()
}

pub fn channel_of(model: &Model, key: &str) -> Option<Row> {
    model
        .channels
        .values()
        .find(|c| channel_key(c.dialect.id(), &c.app, &c.name) == key)
        .map(|c| Row {
            key: key.to_owned(),
            cells: vec![
                c.dialect.id().to_owned(),
                c.app.clone(),
                c.name.clone(),
                c.members.len().to_string(),
                c.messages.to_string(),
            ],
            severity: None,
        })
}

pub fn subscription_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .subscriptions
        .keys()
        .map(|(p, id)| (format!("{p}\u{1f}{id}"), None))
        .collect()
}

pub fn subscription_of(model: &Model, key: &str) -> Option<Row> {
    let (peer, id) = key.split_once('\u{1f}')?;
    model
        .subscriptions
        .get(&(peer.to_owned(), id.to_owned()))
        .map(|s| Row {
            key: key.to_owned(),
            cells: vec![
                s.peer.clone(),
                s.dialect.id().to_owned(),
                s.id.clone(),
                s.topic.clone(),
                s.arguments.to_string(),
            ],
            severity: None,
        })
}

pub fn app_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), Some(i as u64)))
        .collect()
}

pub fn app_of(model: &Model, key: &str) -> Option<Row> {
    model.apps.iter().find(|a| a.id == key).map(|a| Row {
        key: a.id.clone(),
        cells: vec![
            a.id.clone(),
            a.name.clone(),
            a.status.id().to_owned(),
            model
                .peers_by_app
                .get(&a.id)
                .copied()
                .unwrap_or(0)
                .to_string(),
            a.keys
                .iter()
                .map(|k| format!("{} ({})", k.id, k.grants.join(" ")))
                .collect::<Vec<_>>()
                .join(", "),
        ],
        severity: (a.status != AppStatus::Active).then_some(Severity::Warning),
    })
}

/// The catalog's own search applies the filter, ranking best first.
pub fn catalog_keys(_model: &Model, filter: &str) -> Vec<(String, Option<u64>)> {
    catalog::search(filter)
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.qualified(), Some(i as u64)))
        .collect()
}

pub fn catalog_of(_model: &Model, key: &str) -> Option<Row> {
    lookup_qualified(key).map(|e| Row {
        key: e.qualified(),
        cells: vec![
            e.dialect.id().to_owned(),
            e.code.to_owned(),
            e.delivery.id().to_owned(),
            e.retry.id().to_owned(),
            e.title.to_owned(),
        ],
        severity: Some(e.severity()),
    })
}

/// Newest first, each key once. The position counts down from the first entry ever kept, so
/// an entry keeps it as others come and go and a table can follow the history entry by entry.
pub fn history_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .history
        .shown_newest_first()
        .map(|(position, h)| (super::model::history_key(h), Some(history_rank(position))))
        .collect()
}

/// The natural place of the history entry at `position`: the newest first.
pub fn history_rank(position: u64) -> u64 {
    u64::MAX - position
}

pub fn history_of(model: &Model, key: &str) -> Option<Row> {
    model.history_entry(key).map(history_row)
}

pub fn ban_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .bans
        .keys()
        .map(|id| (id.to_string(), Some(*id)))
        .collect()
}

pub fn ban_of(model: &Model, key: &str) -> Option<Row> {
    key.parse::<u64>()
        .ok()
        .and_then(|id| model.bans.get(&id))
        .map(|ban| ban_row(ban, model.server_ms))
}

/// As the heartbeat lists them: by name.
pub fn node_keys(model: &Model, _filter: &str) -> Vec<(String, Option<u64>)> {
    model
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.info.node_id.clone(), Some(i as u64)))
        .collect()
}

pub fn node_of(model: &Model, key: &str) -> Option<Row> {
    model
        .nodes
        .iter()
        .find(|n| n.info.node_id == key)
        .map(|node| node_row(node, model.server_ms))
}
