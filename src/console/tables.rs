//! Tables: the rows each view projects from the model, filtered and sorted as the user asked.
//!
//! The current view keeps an index: its rows' keys in display order. A delta about one peer
//! moves one entry of it (a binary search and a shift), so a sorted table of 100,000 peers
//! follows live deltas without re-sorting; smaller tables are rebuilt when they change.
//! Drawing reads a window of the index and builds only the rows on screen.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::model::{natural_cmp, Applied, HistoryMoves, Model};
pub use super::rows::{
    ban_row, channel_key, history_row, node_row, peer_row, room_row, time_of, Row,
};
use super::rows::{history_rank, peer_cell};
use super::short_key::ShortKey;
use super::views::View;
use crate::protocol::admin::PeerInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    pub selected: usize,
    pub filter: String,
    /// Column index to sort by; `None` keeps the natural order.
    pub sort: Option<usize>,
    pub descending: bool,
}

/// A view's whole table, in display order.
pub struct TableData {
    pub headers: &'static [&'static str],
    pub rows: Vec<Row>,
}

/// A window of a table's rows, for drawing without building the rows that are not shown.
pub struct TableWindow {
    pub headers: &'static [&'static str],
    /// Rows in the whole (filtered) table.
    pub total: usize,
    pub rows: Vec<Row>,
}

/// A sort cell: numbers sort as numbers (before any text), everything else as text.
#[derive(Debug, Clone)]
enum SortKey {
    Number(f64),
    Text(ShortKey),
}

impl SortKey {
    fn new(text: &str) -> SortKey {
        match text.parse::<f64>() {
            Ok(number) => SortKey::Number(number),
            Err(_) => SortKey::Text(ShortKey::new(text)),
        }
    }

    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Number(_), SortKey::Text(_)) => Ordering::Less,
            (SortKey::Text(_), SortKey::Number(_)) => Ordering::Greater,
            (SortKey::Text(a), SortKey::Text(b)) => natural_cmp(a, b),
        }
    }
}

/// Where an entry falls when no column decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Natural {
    /// The server's own order (apps as configured, catalog entries by search rank).
    Position(u64),
    /// A key of the form `prefix` + digits (`p12345`), split once so that comparing two such
    /// keys with the same prefix is one integer comparison, not a walk through both strings.
    Numbered { prefix_len: u32, number: u64 },
    /// Any other key, compared in natural text order.
    Text,
}

impl Natural {
    fn of(key: &str, position: Option<u64>) -> Natural {
        if let Some(position) = position {
            return Natural::Position(position);
        }
        let numbered = || {
            let bytes = key.as_bytes();
            let prefix_len = bytes.iter().position(u8::is_ascii_digit)?;
            let digits = bytes.get(prefix_len..)?;
            if digits.len() > 19 {
                return None;
            }
            let mut number: u64 = 0;
            for digit in digits {
                if !digit.is_ascii_digit() {
                    return None;
                }
                // 19 digits always fit in a u64.
                number = number * 10 + u64::from(digit - b'0');
            }
            Some(Natural::Numbered {
                prefix_len: u32::try_from(prefix_len).ok()?,
                number,
            })
        };
        numbered().unwrap_or(Natural::Text)
    }
}

/// One entry of the index, kept small: a sort moves 100,000 of them.
#[derive(Debug, Clone)]
struct Ranked {
    column: Option<SortKey>,
    natural: Natural,
    key: ShortKey,
}

impl Ranked {
    fn new(column: Option<SortKey>, position: Option<u64>, key: &str) -> Ranked {
        Ranked {
            column,
            natural: Natural::of(key, position),
            key: ShortKey::new(key),
        }
    }

    /// The natural order: `p2` before `p10`; the plain comparison breaks ties (`p01`, `p1`)
    /// so that the order is total, as a binary search needs.
    fn natural_cmp(&self, other: &Ranked) -> Ordering {
        match (self.natural, other.natural) {
            (Natural::Position(a), Natural::Position(b)) => a.cmp(&b),
            (
                Natural::Numbered {
                    prefix_len: a_len,
                    number: a,
                },
                Natural::Numbered {
                    prefix_len: b_len,
                    number: b,
                },
            ) if a_len == b_len
                // Short keys are inline: comparing prefixes reads no other memory.
                && self.key.as_bytes().get(..a_len as usize)
                    == other.key.as_bytes().get(..b_len as usize) =>
            {
                a.cmp(&b).then_with(|| self.key.cmp(&other.key))
            }
            _ => natural_cmp(&self.key, &other.key).then_with(|| self.key.cmp(&other.key)),
        }
    }
}

/// Whether any of a peer's cells (as [`peer_row`] shows them) contains `needle_lower`, tested
/// on the peer's own fields: filtering 100,000 peers must not format 900,000 cells.
fn peer_matches(p: &PeerInfo, needle_lower: &str) -> bool {
    let text = [
        p.id.as_str(),
        p.dialect.id(),
        p.app.as_deref().unwrap_or(""),
        p.identity.as_deref().unwrap_or(""),
        p.room.as_deref().unwrap_or(""),
        p.addr.as_str(),
    ];
    text.iter().any(|cell| contains_folded(cell, needle_lower))
        || [p.frames_in, p.frames_out, p.errors]
            .iter()
            .any(|n| number_contains(*n, needle_lower))
}

/// Whether the decimal digits of `n` contain `needle`, without a `String` for them.
fn number_contains(n: u64, needle: &str) -> bool {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return true;
    }
    if !needle.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[start..].windows(needle.len()).any(|w| w == needle)
}

/// A peer's sort cell without formatting numbers only to parse them back.
fn peer_sort_key(p: &PeerInfo, column: usize) -> SortKey {
    match column {
        5 => SortKey::Number(p.frames_in as f64),
        6 => SortKey::Number(p.frames_out as f64),
        7 => SortKey::Number(p.errors as f64),
        0 => SortKey::new(&p.id),
        1 => SortKey::new(p.dialect.id()),
        2 => SortKey::new(p.app.as_deref().unwrap_or("")),
        3 => SortKey::new(p.identity.as_deref().unwrap_or("")),
        4 => SortKey::new(p.room.as_deref().unwrap_or("")),
        8 => SortKey::new(&p.addr),
        other => SortKey::new(&peer_cell(p, other)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Order {
    view: View,
    /// The filter lowercased once, not once per row tested.
    filter: String,
    sort: Option<usize>,
    descending: bool,
}

impl Order {
    fn of(view: View, state: &TableState) -> Order {
        Order {
            view,
            filter: state.filter.to_lowercase(),
            sort: state.sort,
            descending: state.descending,
        }
    }

    fn compare(&self, a: &Ranked, b: &Ranked) -> Ordering {
        let by_column = match (&a.column, &b.column) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        let by_column = if self.descending {
            by_column.reverse()
        } else {
            by_column
        };
        // Ties keep the natural order whichever way the column sorts.
        by_column.then_with(|| a.natural_cmp(b))
    }

    /// The ranked entry of a row, or `None` when the filter hides it.
    fn rank(&self, row: &Row, position: Option<u64>) -> Option<Ranked> {
        let filter = &self.filter;
        // The catalog's search has already applied the filter.
        if self.view != View::Catalog
            && !filter.is_empty()
            && !row.cells.iter().any(|c| contains_folded(c, filter))
        {
            return None;
        }
        Some(Ranked::new(
            self.sort
                .map(|c| SortKey::new(row.cells.get(c).map_or("", String::as_str))),
            position,
            &row.key,
        ))
    }

    /// [`Order::rank`] for a peer, without building its row.
    fn rank_peer(&self, peer: &PeerInfo) -> Option<Ranked> {
        if !peer_matches(peer, &self.filter) {
            return None;
        }
        Some(Ranked::new(
            self.sort.map(|c| peer_sort_key(peer, c)),
            None,
            &peer.id,
        ))
    }

    fn build(&self, model: &Model) -> Vec<Ranked> {
        let mut ranked = Vec::new();
        self.build_into(model, &mut ranked);
        ranked
    }

    /// [`Order::build`] into the vector of an index being replaced: its memory is already
    /// mapped, where a fresh 100,000-entry vector would fault in every page of it.
    fn build_into(&self, model: &Model, ranked: &mut Vec<Ranked>) {
        ranked.clear();
        if self.view == View::Peers {
            // Straight from the peers: building whole rows for 100,000 of them would cost
            // more than the sort itself.
            ranked.extend(model.peers.values().filter_map(|peer| self.rank_peer(peer)));
        } else {
            if let Some(table) = self.view.table() {
                ranked.extend((table.keys)(model, &self.filter).into_iter().filter_map(
                    |(key, position)| {
                        let row = (table.row)(model, &key)?;
                        self.rank(&row, position)
                    },
                ));
            }
        }
        // Keys are unique, so no two entries compare equal and stability buys nothing.
        ranked.sort_unstable_by(|a, b| self.compare(a, b));
    }

    fn locate(&self, order: &[Ranked], entry: &Ranked) -> Result<usize, usize> {
        order.binary_search_by(|probe| self.compare(probe, entry))
    }
}

/// The index of one view: its keys in display order.
#[derive(Debug, Clone)]
struct Index {
    order: Order,
    entries: Vec<Ranked>,
    /// A delta asked for a rebuild that has not happened yet: bursts of deltas cost one
    /// rebuild before the next draw or key, not one each.
    stale: bool,
}

impl Index {
    /// Take out the entry a row had (if the filter showed it) and put in the one it has now;
    /// `selected` stays on the entry it was on, wherever that entry or others move.
    fn shift(&mut self, old: Option<Ranked>, new: Option<Ranked>, selected: &mut usize) {
        let mut selected_moved = false;
        if let Some(old) = old {
            let at = match self.order.locate(&self.entries, &old) {
                Ok(at) if self.entries.get(at).is_some_and(|e| e.key == old.key) => Some(at),
                // Equal sort keys are told apart by key, so a miss means the entry was never
                // there; look by key to be sure nothing stale is left.
                _ => self.entries.iter().position(|e| e.key == old.key),
            };
            if let Some(at) = at {
                self.entries.remove(at);
                if at < *selected {
                    *selected -= 1;
                } else if at == *selected {
                    selected_moved = new.as_ref().is_some_and(|n| n.key == old.key);
                }
            }
        }
        if let Some(new) = new {
            let at = match self.order.locate(&self.entries, &new) {
                Ok(at) | Err(at) => at,
            };
            self.entries.insert(at, new);
            if selected_moved {
                *selected = at;
            } else if at <= *selected && self.entries.len() > 1 {
                *selected += 1;
            }
        }
    }

    /// Follow the history entry by entry: the keys gone out, the entries added in, each a
    /// search and a shift, so a history of 100,000 entries takes a close without a re-sort.
    fn follow_history(&mut self, model: &Model, moves: &HistoryMoves, selected: &mut usize) {
        let selected_key: Option<Box<str>> = self.key_at(*selected).map(Box::from);
        // Trimmed entries are the oldest, at the end in the natural order: look from there.
        // Past a few, one pass over the index costs less than a search each.
        if moves.gone.len() <= FEW_GONE {
            for key in &moves.gone {
                if let Some(at) = self.entries.iter().rposition(|e| &*e.key == key.as_str()) {
                    self.entries.remove(at);
                    if at < *selected {
                        *selected -= 1;
                    }
                }
            }
        } else {
            let gone: std::collections::HashSet<&str> =
                moves.gone.iter().map(String::as_str).collect();
            let mut at = 0;
            let mut removed_before_selected = 0;
            self.entries.retain(|e| {
                let keep = !gone.contains(&*e.key);
                if !keep && at < *selected {
                    removed_before_selected += 1;
                }
                at += 1;
                keep
            });
            *selected -= removed_before_selected;
        }
        for key in &moves.added {
            let (Some(position), Some(entry)) =
                (model.history.position_of(key), model.history_entry(key))
            else {
                continue;
            };
            let ranked = self
                .order
                .rank(&history_row(entry), Some(history_rank(position)));
            self.shift(None, ranked, selected);
        }
        // A key that closed again went out and came back in at the top: the selection goes
        // with it, as it does with a peer that moves.
        if let Some(key) = selected_key {
            if self.key_at(*selected) != Some(&*key) {
                if let Some(at) = self.entries.iter().position(|e| *e.key == *key) {
                    *selected = at;
                }
            }
        }
    }

    fn key_at(&self, position: usize) -> Option<&str> {
        self.entries.get(position).map(|e| &*e.key)
    }
}

/// Keys gone from the history that are looked up one by one; more take one pass.
const FEW_GONE: usize = 16;

#[derive(Debug, Clone)]
pub struct Tables {
    states: HashMap<View, TableState>,
    index: Option<Index>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables::new()
    }
}

impl Tables {
    pub fn new() -> Tables {
        Tables {
            states: HashMap::new(),
            index: None,
        }
    }

    pub fn state(&self, view: View) -> TableState {
        self.states.get(&view).cloned().unwrap_or_default()
    }

    pub fn filter(&self, view: View) -> &str {
        self.states
            .get(&view)
            .map(|s| s.filter.as_str())
            .unwrap_or("")
    }

    /// A view's state, to change; the index notices the change at the next
    /// [`Tables::refresh`] and until then readers compute the order afresh.
    pub fn entry(&mut self, view: View) -> &mut TableState {
        self.states.entry(view).or_default()
    }

    /// Make the index serve `view` as its state now asks, rebuilding it when a delta left it
    /// stale or the view, filter or sort changed. The selected row stays on the entry it was on
    /// when that entry is still shown.
    pub fn refresh(&mut self, model: &Model, view: View) {
        if view.table().is_none() {
            self.index = None;
            return;
        }
        let order = Order::of(view, &self.state(view));
        if self
            .index
            .as_ref()
            .is_some_and(|i| i.order == order && !i.stale)
        {
            return;
        }
        let selected = self.state(view).selected;
        let selected_key: Option<Box<str>> = self
            .index
            .as_ref()
            .filter(|i| i.order.view == view)
            .and_then(|i| i.key_at(selected.min(i.entries.len().saturating_sub(1))))
            .map(Box::from);
        let mut entries = self
            .index
            .take()
            .map(|index| index.entries)
            .unwrap_or_default();
        order.build_into(model, &mut entries);
        let found = selected_key.and_then(|key| {
            entries
                .iter()
                .position(|e| e.key.as_bytes() == key.as_bytes())
        });
        self.index = Some(Index {
            order,
            entries,
            stale: false,
        });
        if let Some(at) = found {
            self.entry(view).selected = at;
        }
        self.clamp_selection(view);
    }

    /// Follow one applied message: a peer or a room moves within the index (a binary search
    /// and a shift); a smaller table that changed is marked for a rebuild at the next
    /// [`Tables::refresh`].
    pub fn follow(&mut self, model: &Model, applied: &Applied) {
        let Some(index) = self.index.as_mut() else {
            return;
        };
        if index.stale {
            return;
        }
        let view = index.order.view;
        if let (View::History, Some(moves), false) =
            (view, &applied.history_moves, applied.everything)
        {
            let mut selected = self
                .states
                .get(&view)
                .map_or(0, |s| s.selected)
                .min(index.entries.len().saturating_sub(1));
            index.follow_history(model, moves, &mut selected);
            self.entry(view).selected = selected;
            self.clamp_selection(view);
            return;
        }
        let order = &index.order;
        let rebuild = applied.everything
            || view
                .table()
                .is_some_and(|table| (table.rebuilt_on)(applied));
        if rebuild {
            index.stale = true;
            return;
        }
        let moved = match (view, &applied.peer, &applied.room) {
            (View::Peers, Some(change), _) => Some((
                change.before.as_ref().and_then(|p| order.rank_peer(p)),
                model.peer(&change.id).and_then(|p| order.rank_peer(p)),
            )),
            (View::Rooms, _, Some(change)) => Some((
                change
                    .before
                    .as_ref()
                    .and_then(|r| order.rank(&room_row(r), None)),
                model
                    .rooms
                    .get(&change.code)
                    .and_then(|r| order.rank(&room_row(r), None)),
            )),
            _ => None,
        };
        let Some((old, new)) = moved else {
            return;
        };
        let mut selected = self
            .states
            .get(&view)
            .map_or(0, |s| s.selected)
            .min(index.entries.len().saturating_sub(1));
        index.shift(old, new, &mut selected);
        self.entry(view).selected = selected;
        self.clamp_selection(view);
    }

    fn clamp_selection(&mut self, view: View) {
        let total = self.index.as_ref().map_or(0, |i| i.entries.len());
        let state = self.entry(view);
        state.selected = state.selected.min(total.saturating_sub(1));
    }

    /// The index, when it is current for `view`.
    fn index_for(&self, view: View) -> Option<&Index> {
        let wanted = Order::of(view, &self.state(view));
        self.index
            .as_ref()
            .filter(|i| !i.stale && i.order == wanted)
    }

    fn keys(&self, model: &Model, view: View) -> Vec<String> {
        Order::of(view, &self.state(view))
            .build(model)
            .into_iter()
            .map(|r| r.key.to_string())
            .collect()
    }

    /// Rows `first..first + count` in display order, with the table's total.
    pub fn window(&self, model: &Model, view: View, first: usize, count: usize) -> TableWindow {
        let (total, keys): (usize, Vec<String>) = match self.index_for(view) {
            Some(index) => (
                index.entries.len(),
                index
                    .entries
                    .iter()
                    .skip(first)
                    .take(count)
                    .map(|r| r.key.to_string())
                    .collect(),
            ),
            None => {
                let keys = self.keys(model, view);
                (
                    keys.len(),
                    keys.into_iter().skip(first).take(count).collect(),
                )
            }
        };
        TableWindow {
            headers: view.columns(),
            total,
            rows: keys
                .iter()
                .filter_map(|key| view.table().and_then(|table| (table.row)(model, key)))
                .collect(),
        }
    }

    /// Every row in display order.
    pub fn table(&self, model: &Model, view: View) -> TableData {
        let window = self.window(model, view, 0, usize::MAX);
        TableData {
            headers: window.headers,
            rows: window.rows,
        }
    }

    /// Rows after filtering.
    pub fn total(&self, model: &Model, view: View) -> usize {
        match self.index_for(view) {
            Some(index) => index.entries.len(),
            None => self.keys(model, view).len(),
        }
    }

    /// The key of the selected row.
    pub fn selected_key(&self, model: &Model, view: View) -> Option<String> {
        let selected = self.state(view).selected;
        match self.index_for(view) {
            Some(index) => index
                .entries
                .get(selected.min(index.entries.len().saturating_sub(1)))
                .map(|r| r.key.to_string()),
            None => {
                let keys = self.keys(model, view);
                let at = selected.min(keys.len().saturating_sub(1));
                keys.into_iter().nth(at)
            }
        }
    }
}

/// Whether `haystack` contains `needle_lower` ignoring case; allocation-free for ASCII text,
/// which is nearly every cell, since filtering runs over every row of a large table.
pub fn contains_folded(haystack: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let needle = needle_lower.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(needle_lower)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::catalog::Dialect;
    use crate::protocol::admin::{Event, RoomInfo, ServerMessage, Snapshot};

    fn peer(n: u8, frames: u8, errors: u8) -> PeerInfo {
        PeerInfo {
            id: format!("p{n}"),
            dialect: if n % 2 == 0 {
                Dialect::Pubsub
            } else {
                Dialect::Flow
            },
            app: Some("demo".into()),
            identity: Some(format!("who{}", frames % 3)),
            addr: format!("127.0.0.1:{}", 1000 + u16::from(n)),
            connected_at_ms: 0,
            room: None,
            probe: false,
            frames_in: u64::from(frames),
            frames_out: 0,
            errors: u64::from(errors),
            frames_dropped: 0,
            round_trip_us: None,
            node: None,
        }
    }

    fn room(n: u8, players: u8) -> RoomInfo {
        RoomInfo {
            code: format!("R{n}"),
            room_id: format!("room-{n}"),
            app: "demo".into(),
            game: if n % 3 == 0 {
                "arena".into()
            } else {
                "duel".into()
            },
            max_players: 8,
            supports_authority: false,
            lobby_state: "lobby".into(),
            players: (0..players)
                .map(|k| crate::protocol::admin::RoomMember {
                    player_id: format!("pl{k}"),
                    name: format!("P{k}"),
                    peer: None,
                    ready: false,
                })
                .collect(),
            spectators: vec![],
            authority: None,
            created_at_ms: 0,
        }
    }

    fn fresh_keys(tables: &Tables, model: &Model, view: View) -> Vec<String> {
        Order::of(view, &tables.state(view))
            .build(model)
            .into_iter()
            .map(|r| r.key.to_string())
            .collect()
    }

    fn closed_peer(n: u8, at_ms: u64) -> crate::protocol::admin::HistoryEntry {
        use crate::protocol::admin::{Closed, ClosedPeer, HistoryEntry};
        HistoryEntry {
            closed_at_ms: at_ms,
            closed: Closed::Peer(Box::new(ClosedPeer {
                peer: peer(n, n % 7, n % 3),
                code: Some(if n % 2 == 0 { 4020 } else { 1000 }),
                reason: String::new(),
                rooms: vec![],
                player_id: None,
                last_errors: vec![],
                recorded_frames: 0,
                refused_joins: vec![],
            })),
        }
    }

    /// Tables with `view` sorted and filtered as a property test drew them.
    fn sorted_tables(view: View, sort: Option<usize>, descending: bool, filter: &str) -> Tables {
        let mut tables = Tables::new();
        let state = tables.entry(view);
        state.sort = sort;
        state.descending = descending;
        state.filter = filter.to_owned();
        tables
    }

    proptest! {
        /// The history view follows closes and the entries the limits push out entry by
        /// entry, and holds exactly the order a rebuild gives: a key closing again shows its
        /// newest entry once, a selected entry stays selected while it shows.
        #[test]
        fn the_history_index_follows_closes_as_a_rebuild_would(
            ops in prop::collection::vec((0u8..60, 0u64..400, any::<bool>()), 1..120),
            sort in prop::option::of(0usize..6),
            descending in any::<bool>(),
            filter in prop::sample::select(vec!["", "p1", "4020", "flow"]),
            selected in 0usize..10,
        ) {
            use crate::protocol::admin::{HistoryLimits, Stats};
            let mut model = Model::default();
            let mut tables = sorted_tables(View::History, sort, descending, filter);
            let mut snapshot = Snapshot::default();
            snapshot.server.history = HistoryLimits { max_entries: 40, retain_ms: 5_000 };
            snapshot.history = (0..12).map(|n| closed_peer(n, 1_000 + u64::from(n))).collect();
            let applied = model.apply(ServerMessage::Snapshot { seq: 0, snapshot: Box::new(snapshot) });
            tables.follow(&model, &applied);
            tables.refresh(&model, View::History);
            tables.entry(View::History).selected = selected;
            let mut followed = tables.selected_key(&model, View::History);
            let mut now = 2_000;
            for (seq, (n, step, tick)) in ops.into_iter().enumerate() {
                // A tick may jump far ahead: every entry older than retain_ms goes at once.
                now += if tick { step * 20 } else { step };
                let event = if tick {
                    Event::Stats { stats: Stats::default() }
                } else {
                    Event::HistoryAdded { entry: closed_peer(n, now) }
                };
                let applied = model.apply(ServerMessage::Delta { seq: seq as u64 + 1, at_ms: now, event });
                prop_assert!(applied.history_moves.is_some() || !applied.history);
                tables.follow(&model, &applied);
                tables.refresh(&model, View::History);
                let window = tables.window(&model, View::History, 0, usize::MAX);
                let shown: Vec<String> = window.rows.into_iter().map(|r| r.key).collect();
                prop_assert_eq!(&shown, &fresh_keys(&tables, &model, View::History));
                match &followed {
                    Some(key) if shown.contains(key) => {
                        prop_assert_eq!(tables.selected_key(&model, View::History), followed.clone());
                    }
                    _ => followed = tables.selected_key(&model, View::History),
                }
            }
        }

        /// The peers filter tests a peer's fields as the row's cells show them, numbers
        /// included, without building the row.
        #[test]
        fn the_peers_filter_matches_as_the_cells_read(
            n in 0u8..30,
            frames in any::<u8>(),
            errors in 0u8..3,
            room in prop::option::of("[a-zA-Z0-9]{0,4}"),
            needle in "[a-zA-Z0-9.:-]{0,3}|ÄÖ|é",
        ) {
            let peer = PeerInfo { room, frames_out: 1234, ..peer(n, frames, errors) };
            let needle = needle.to_lowercase();
            let by_cells = peer_row(&peer).cells.iter().any(|c| contains_folded(c, &needle));
            prop_assert_eq!(peer_matches(&peer, &needle), by_cells);
        }

        /// However peers come, change and go, the index moved entry by entry holds exactly
        /// the order a sort from scratch gives, under any sort column, direction and filter.
        #[test]
        fn the_index_follows_deltas_as_a_fresh_sort_would(
            ops in prop::collection::vec((0u8..30, 0u8..5, 0u8..3, any::<bool>()), 1..80),
            sort in prop::option::of(0usize..9),
            descending in any::<bool>(),
            filter in prop::sample::select(vec!["", "who1", "P1", "flow"]),
            selected in 0usize..10,
        ) {
            let mut model = Model::default();
            let mut tables = sorted_tables(View::Peers, sort, descending, filter);
            let applied = model.apply(ServerMessage::Snapshot {
                seq: 0,
                snapshot: Box::new(Snapshot {
                    peers: (0..10).map(|n| peer(n, n % 4, n % 2)).collect(),
                    ..Snapshot::default()
                }),
            });
            tables.follow(&model, &applied);
            tables.refresh(&model, View::Peers);
            // The user selects a row; whatever else arrives, it stays on that peer.
            tables.entry(View::Peers).selected = selected % 10;
            let mut followed = tables.selected_key(&model, View::Peers);
            for (seq, (id, frames, errors, close)) in ops.into_iter().enumerate() {
                let event = if close {
                    Event::PeerClosed { peer: format!("p{id}"), code: Some(4020), reason: String::new() }
                } else {
                    Event::PeerUpdated { peer: peer(id, frames, errors) }
                };
                let applied = model.apply(ServerMessage::Delta { seq: seq as u64 + 1, at_ms: 0, event });
                tables.follow(&model, &applied);
                tables.refresh(&model, View::Peers);
                let window = tables.window(&model, View::Peers, 0, usize::MAX);
                let shown: Vec<String> = window.rows.into_iter().map(|r| r.key).collect();
                prop_assert_eq!(window.total, shown.len());
                prop_assert_eq!(&shown, &fresh_keys(&tables, &model, View::Peers));
                match &followed {
                    Some(key) if shown.contains(key) => {
                        prop_assert_eq!(tables.selected_key(&model, View::Peers), followed.clone());
                    }
                    // The selected peer closed or the filter hid it: the selection moves on.
                    _ => followed = tables.selected_key(&model, View::Peers),
                }
            }
        }

        /// The same for rooms, which move by code.
        #[test]
        fn the_rooms_index_follows_deltas_as_a_fresh_sort_would(
            ops in prop::collection::vec((0u8..20, 0u8..5, any::<bool>()), 1..60),
            sort in prop::option::of(0usize..7),
            descending in any::<bool>(),
            filter in prop::sample::select(vec!["", "arena", "r1"]),
        ) {
            let mut model = Model::default();
            let mut tables = sorted_tables(View::Rooms, sort, descending, filter);
            tables.refresh(&model, View::Rooms);
            for (seq, (n, players, close)) in ops.into_iter().enumerate() {
                let event = if close {
                    Event::RoomClosed { code: format!("R{n}") }
                } else {
                    Event::RoomUpdated { room: room(n, players) }
                };
                let applied = model.apply(ServerMessage::Delta { seq: seq as u64 + 1, at_ms: 0, event });
                tables.follow(&model, &applied);
                tables.refresh(&model, View::Rooms);
                let window = tables.window(&model, View::Rooms, 0, usize::MAX);
                let shown: Vec<String> = window.rows.into_iter().map(|r| r.key).collect();
                prop_assert_eq!(shown, fresh_keys(&tables, &model, View::Rooms));
            }
        }
    }
}
