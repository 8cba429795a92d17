//! The live log: errors (decoded from the catalog when they arrive), closes, tapped frames and
//! notices, bounded, numbered since the console started, and readable back without new lines
//! moving what is being read.

use std::collections::VecDeque;

use crate::catalog::{self, Delivery, Dialect, Entry, Severity};
use crate::protocol::admin::Direction;

/// Log entries kept; older ones are dropped first.
pub const LOG_CAPACITY: usize = 5000;

#[derive(Debug, Clone, PartialEq)]
pub enum LogKind {
    Error {
        code: String,
        delivery: Delivery,
        request_id: Option<String>,
        frame: String,
    },
    Closed {
        code: Option<u16>,
        reason: String,
    },
    Frame {
        direction: Direction,
        text: String,
    },
    Notice {
        text: String,
        severity: Severity,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub at_ms: u64,
    pub peer: Option<String>,
    pub dialect: Option<Dialect>,
    pub kind: LogKind,
    decoded: Option<&'static Entry>,
    /// Everything a filter matches against, lowercased once.
    haystack: String,
}

impl LogEntry {
    pub fn new(at_ms: u64, peer: Option<String>, dialect: Option<Dialect>, kind: LogKind) -> Self {
        let decoded = decode(&kind, dialect);
        let body = match &kind {
            LogKind::Error { code, frame, .. } => format!("{code} {frame}"),
            LogKind::Closed { code, reason } => format!(
                "{} {reason}",
                code.map(|c| c.to_string()).unwrap_or_default()
            ),
            LogKind::Frame { text, .. } | LogKind::Notice { text, .. } => text.clone(),
        };
        let haystack = format!(
            "{} {} {body}",
            peer.as_deref().unwrap_or(""),
            dialect.map(|d| d.id()).unwrap_or("")
        )
        .to_lowercase();
        LogEntry {
            at_ms,
            peer,
            dialect,
            kind,
            decoded,
            haystack,
        }
    }

    /// The catalog entry that explains this line, if it is an error or an error close.
    pub fn decoded(&self) -> Option<&'static Entry> {
        self.decoded
    }

    fn matches(&self, peer: Option<&str>, filter_lower: &str) -> bool {
        peer.is_none_or(|p| self.peer.as_deref() == Some(p))
            && (filter_lower.is_empty() || self.haystack.contains(filter_lower))
    }
}

fn decode(kind: &LogKind, dialect: Option<Dialect>) -> Option<&'static Entry> {
    let dialect = dialect?;
    match kind {
        LogKind::Error {
            code,
            delivery: Delivery::Close,
            ..
        } => code.parse().ok().and_then(|c| catalog::close(dialect, c)),
        LogKind::Error { code, .. } => catalog::get(dialect, code),
        LogKind::Closed {
            code: Some(code), ..
        } => catalog::close(dialect, *code),
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Log {
    entries: VecDeque<LogEntry>,
    /// Entries ever added, dropped ones included.
    total: u64,
    /// The number of the newest entry on screen while the user reads back; `None` follows
    /// the live log.
    pub anchor: Option<u64>,
}

impl Log {
    pub fn push(&mut self, entry: LogEntry) {
        if self.entries.len() >= LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        self.total += 1;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogEntry> {
        self.entries.iter()
    }

    /// Entries of `peer` (all when `None`) that match `filter`, each with its number
    /// (counted since the console started, so it survives older entries being dropped).
    pub fn entries(&self, peer: Option<&str>, filter: &str) -> Vec<(u64, &LogEntry)> {
        let filter = filter.to_lowercase();
        let first = self.total - self.entries.len() as u64;
        self.entries
            .iter()
            .enumerate()
            .map(|(offset, entry)| (first + offset as u64, entry))
            .filter(|(_, e)| e.matches(peer, &filter))
            .collect()
    }

    /// The entry numbered `number`, while it is still kept.
    pub fn get(&self, number: u64) -> Option<&LogEntry> {
        let first = self.total - self.entries.len() as u64;
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.entries.get(index)
    }

    /// The number of the entry being read (the newest on screen).
    pub fn current_number(&self, peer: Option<&str>, filter: &str) -> Option<u64> {
        let entries = self.entries(peer, filter);
        let shown = self.shown_up_to(&entries);
        shown
            .checked_sub(1)
            .and_then(|last| entries.get(last))
            .map(|(n, _)| *n)
    }

    /// How many of `entries` are shown: those up to the anchor, or all when following live.
    pub fn shown_up_to(&self, entries: &[(u64, &LogEntry)]) -> usize {
        match self.anchor {
            Some(anchor) => entries.partition_point(|(n, _)| *n <= anchor),
            None => entries.len(),
        }
    }

    /// The entry being read: the newest on screen.
    pub fn current(&self, peer: Option<&str>, filter: &str) -> Option<LogEntry> {
        self.get(self.current_number(peer, filter)?).cloned()
    }

    /// Scroll by `delta` entries (negative: back in time). Scrolling back pins the view to an
    /// entry, so new arrivals do not move what is being read; scrolling past the newest entry
    /// follows the live log again.
    pub fn scroll(&mut self, peer: Option<&str>, filter: &str, delta: isize) {
        let numbers: Vec<u64> = self.entries(peer, filter).iter().map(|(n, _)| *n).collect();
        let Some(last) = numbers.len().checked_sub(1) else {
            self.anchor = None;
            return;
        };
        let current = match self.anchor {
            None => last,
            Some(anchor) => numbers.partition_point(|n| *n <= anchor).saturating_sub(1),
        };
        let target = (current as isize)
            .saturating_add(delta)
            .clamp(0, last as isize) as usize;
        self.anchor = if target < last {
            numbers.get(target).copied()
        } else {
            None
        };
    }
}
