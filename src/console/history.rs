//! The history of closed peers and rooms as the console keeps it: oldest first, indexed by key,
//! each entry at a position that never changes while it is kept.

use std::collections::{HashMap, VecDeque};

use crate::protocol::admin::{Closed, HistoryEntry};

/// Closed peers and rooms, oldest first, with an index by [`history_key`]: tables, details
/// and `:find` look entries up by key once per row drawn, and a scan of 2,000 entries per
/// lookup (building each key to compare it) froze the console under a flood of closes.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
    /// Number of entries ever pushed before the oldest one kept: an entry's position is
    /// `first + its index`, so dropping the oldest never renumbers the rest.
    first: u64,
    /// The position of the newest entry with each key.
    by_key: HashMap<String, u64, foldhash::fast::RandomState>,
}

impl History {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, HistoryEntry> {
        self.entries.iter()
    }

    pub fn oldest(&self) -> Option<&HistoryEntry> {
        self.entries.front()
    }

    pub fn get(&self, key: &str) -> Option<&HistoryEntry> {
        let position = *self.by_key.get(key)?;
        let index = usize::try_from(position.checked_sub(self.first)?).ok()?;
        self.entries.get(index)
    }

    /// Keep `entry` as the newest; true when it replaced an older entry with the same key,
    /// which no longer shows.
    pub fn push(&mut self, entry: HistoryEntry) -> bool {
        let position = self.first + self.entries.len() as u64;
        let replaced = self.by_key.insert(history_key(&entry), position).is_some();
        self.entries.push_back(entry);
        replaced
    }

    /// Drop the oldest entry; its key when no newer entry has the same one (the key is gone).
    pub fn pop_oldest(&mut self) -> Option<Option<String>> {
        let entry = self.entries.pop_front()?;
        let key = history_key(&entry);
        // A newer entry with the same key keeps its place in the index.
        let gone = self.by_key.get(&key) == Some(&self.first);
        if gone {
            self.by_key.remove(&key);
        }
        self.first += 1;
        Some(gone.then_some(key))
    }

    /// Newest first, each shown key once (its newest entry), with the entry's position.
    pub fn shown_newest_first(&self) -> impl Iterator<Item = (u64, &HistoryEntry)> {
        let first = self.first;
        self.entries
            .iter()
            .enumerate()
            .rev()
            .map(move |(i, entry)| (first + i as u64, entry))
            .filter(|(position, entry)| self.by_key.get(&history_key(entry)) == Some(position))
    }

    /// The position of the entry shown under `key`.
    pub fn position_of(&self, key: &str) -> Option<u64> {
        self.by_key.get(key).copied()
    }
}

/// How the history changed, for a table to follow entry by entry instead of rebuilding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryMoves {
    /// Keys whose entry no longer shows (taken out first).
    pub gone: Vec<String>,
    /// Keys of the entries added (put in after).
    pub added: Vec<String>,
}

impl FromIterator<HistoryEntry> for History {
    fn from_iter<I: IntoIterator<Item = HistoryEntry>>(iter: I) -> Self {
        let mut history = History::default();
        for entry in iter {
            history.push(entry);
        }
        history
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a HistoryEntry;
    type IntoIter = std::collections::vec_deque::Iter<'a, HistoryEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// The key a history entry goes by in tables and details: a closed peer's id (ids are never
/// reused while the server runs), a closed room's code with its closing time (codes are).
pub fn history_key(entry: &HistoryEntry) -> String {
    match &entry.closed {
        Closed::Peer(closed) => closed.peer.id.clone(),
        Closed::Room(closed) => format!("{}@{}", closed.room.code, entry.closed_at_ms),
    }
}
