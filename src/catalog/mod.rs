//! Every error and close code that the four dialects (and RFC 6455) document, as data.
//!
//! The catalog is the single source of truth that the rest of relaydeck reads: the decoder
//! turns pasted input into entries, the server takes its wire messages and close reasons from
//! it, the console styles and explains what it shows with it, and the coverage tests check the
//! seed documents against it. Nothing here does I/O.
//!
//! Codes are never removed or renumbered: an entry, once shipped, stays, so that old session
//! files and old player reports keep decoding.

mod entries;
pub(crate) use entries::flow::family as flow_family;

pub mod decode;
pub mod timeline;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The wire dialect an entry belongs to. The ids are stable: they appear in `--json` output,
/// session files, the admin protocol and `--dialect`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// Signal Fish Server v2 JSON protocol (`{"type":T,"data":{…}}`).
    SignalFish,
    /// Talo socket API (`{"req":…}` in, `{"res":…}` out).
    Talo,
    /// Talo HTTP API (status codes, `{message, errorCode}` and `{errors:{…}}` bodies).
    TaloHttp,
    /// Flow Access API WebSocket streams (`{subscription_id, error, action}`).
    Flow,
    /// The pub/sub relay (`{"type":"error","code":…}` and its close codes).
    Pubsub,
    /// RFC 6455 close codes shared by every WebSocket.
    Websocket,
}

impl Dialect {
    pub const ALL: [Dialect; 6] = [
        Dialect::SignalFish,
        Dialect::Talo,
        Dialect::TaloHttp,
        Dialect::Flow,
        Dialect::Pubsub,
        Dialect::Websocket,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Dialect::SignalFish => "signal-fish",
            Dialect::Talo => "talo",
            Dialect::TaloHttp => "talo-http",
            Dialect::Flow => "flow",
            Dialect::Pubsub => "pubsub",
            Dialect::Websocket => "websocket",
        }
    }

    /// The name people use for the system, for headings.
    pub fn display_name(self) -> &'static str {
        match self {
            Dialect::SignalFish => "Signal Fish",
            Dialect::Talo => "Talo socket",
            Dialect::TaloHttp => "Talo HTTP",
            Dialect::Flow => "Flow streams",
            Dialect::Pubsub => "pub/sub relay",
            Dialect::Websocket => "WebSocket (RFC 6455)",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Dialect::ALL
            .into_iter()
            .find(|d| d.id() == wanted)
            .or(match wanted.as_str() {
                "signalfish" | "sf" => Some(Dialect::SignalFish),
                "talo-socket" => Some(Dialect::Talo),
                "talohttp" => Some(Dialect::TaloHttp),
                "pub-sub" | "relay" => Some(Dialect::Pubsub),
                "ws" | "rfc6455" => Some(Dialect::Websocket),
                _ => None,
            })
            .ok_or_else(|| UnknownDialect(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dialect {0:?}; expected one of signal-fish, talo, talo-http, flow, pubsub, websocket"
)]
pub struct UnknownDialect(pub String);

/// How a code reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// An error frame on an open connection; the connection stays up unless the entry says so.
    Frame,
    /// A WebSocket close frame carrying the code (and usually a reason).
    Close,
    /// An HTTP response status (with a body).
    Http,
}

impl Delivery {
    pub fn id(self) -> &'static str {
        match self {
            Delivery::Frame => "frame",
            Delivery::Close => "close",
            Delivery::Http => "http",
        }
    }
}

/// What area of the protocol went wrong; used for grouping and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Credentials, tickets, tokens, app ids.
    Authentication,
    /// Valid credentials that lack a permission, scope or channel grant.
    Authorization,
    /// Well-formed frames whose content breaks a rule (names, sizes, ranges).
    Validation,
    /// Frames the server cannot parse or does not understand.
    Protocol,
    /// Room lifecycle, capacity and membership.
    Room,
    /// The single authoritative client of a room.
    Authority,
    /// Request rate and connection count limits.
    RateLimit,
    /// Plan or billing quotas with a period.
    Quota,
    /// Rejoining a room after a disconnect.
    Reconnection,
    /// Read-only observers of a room.
    Spectator,
    /// Stream subscriptions and channel memberships.
    Subscription,
    /// Delivering a message to a peer or handler.
    Routing,
    /// Faults on the server side.
    Server,
    /// Normal connection lifecycle: shutdowns, restarts, admin actions, normal closes.
    Lifecycle,
    /// Transport-level WebSocket conditions (RFC 6455).
    Transport,
}

impl Category {
    pub fn id(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Authorization => "authorization",
            Category::Validation => "validation",
            Category::Protocol => "protocol",
            Category::Room => "room",
            Category::Authority => "authority",
            Category::RateLimit => "rate-limit",
            Category::Quota => "quota",
            Category::Reconnection => "reconnection",
            Category::Spectator => "spectator",
            Category::Subscription => "subscription",
            Category::Routing => "routing",
            Category::Server => "server",
            Category::Lifecycle => "lifecycle",
            Category::Transport => "transport",
        }
    }
}

/// Whether and when a client should try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retry {
    /// Retrying the same thing fails the same way: fix the client or the input.
    Never,
    /// The credentials or key are the problem: change them, then reconnect.
    NotOnThisConnection,
    /// Succeeds once some state changes first (unsubscribe, leave the room, a slot frees up).
    AfterStateChange,
    /// Transient: retry with exponential backoff.
    Backoff,
    /// A known window must pass first (Retry-After, rate-limit reset, quota period).
    AfterWindow,
    /// Get a new token, ticket or session, then retry.
    Reauthenticate,
    /// The old identity is gone: start over as a new player.
    Rejoin,
    /// May succeed later; do not loop on it.
    Sometimes,
    /// Not an error.
    None,
}

impl Retry {
    pub const ALL: [Retry; 9] = [
        Retry::Never,
        Retry::NotOnThisConnection,
        Retry::AfterStateChange,
        Retry::Backoff,
        Retry::AfterWindow,
        Retry::Reauthenticate,
        Retry::Rejoin,
        Retry::Sometimes,
        Retry::None,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Retry::Never => "never",
            Retry::NotOnThisConnection => "not-on-this-connection",
            Retry::AfterStateChange => "after-state-change",
            Retry::Backoff => "backoff",
            Retry::AfterWindow => "after-window",
            Retry::Reauthenticate => "reauthenticate",
            Retry::Rejoin => "rejoin",
            Retry::Sometimes => "sometimes",
            Retry::None => "none",
        }
    }

    /// One line a person reads next to the policy id.
    pub fn summary(self) -> &'static str {
        match self {
            Retry::Never => "do not retry; fix the client or the input",
            Retry::NotOnThisConnection => "change the key or credentials, then reconnect",
            Retry::AfterStateChange => "retry after the blocking state changes",
            Retry::Backoff => "transient; retry with exponential backoff",
            Retry::AfterWindow => "retry once the stated window has passed",
            Retry::Reauthenticate => "get a new token, ticket or session, then retry",
            Retry::Rejoin => "start over as a new player",
            Retry::Sometimes => "may succeed later; do not loop on it",
            Retry::None => "not an error",
        }
    }
}

impl Retry {
    /// How long an automated client waits before its next attempt after this policy refused it
    /// `refusals` times in a row, or `None` when it must not try again by itself. The waits
    /// double from the first refusal, so a client that loops on a refusal costs the server
    /// a handful of attempts a minute, never thousands a second; a stated window
    /// (`retry_after`) is honoured when the policy has one.
    pub fn wait_before_retry(
        self,
        refusals: u32,
        retry_after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        use std::time::Duration;
        let doubling = |first: Duration, most: Duration| {
            let factor = 1u32 << refusals.saturating_sub(1).min(16);
            Some(first.saturating_mul(factor).min(most))
        };
        match self {
            Retry::None => Some(Duration::ZERO),
            Retry::Never => None,
            // A person has to change something first; checking again now and then finds out
            // when they have (an app activated again, a key restored).
            Retry::NotOnThisConnection | Retry::Reauthenticate => {
                doubling(Duration::from_secs(5), Duration::from_secs(60))
            }
            Retry::AfterWindow => match retry_after {
                Some(window) => Some(window),
                None => doubling(Duration::from_secs(1), Duration::from_secs(60)),
            },
            Retry::Backoff | Retry::Sometimes => {
                doubling(Duration::from_secs(1), Duration::from_secs(30))
            }
            Retry::AfterStateChange | Retry::Rejoin => {
                doubling(Duration::from_secs(1), Duration::from_secs(10))
            }
        }
    }
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The wait that an [`Retry::AfterWindow`] policy refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The usual length, when the system documents one.
    pub seconds: Option<u32>,
    /// Where the client learns the real length (a header, a field, a plan setting).
    pub source: &'static str,
}

/// How loudly a code deserves to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Not an error: normal closes and notices.
    Info,
    /// The client did something the server refused; the server is fine.
    Warning,
    /// The server (or the path to it) failed.
    Error,
}

/// Where an entry's facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Source {
    /// One of the five documents in `shared/seeds/`, by file name.
    Seed(&'static str),
    /// Sent by the real system although its error page does not list it.
    Upstream(&'static str),
    /// RFC 6455 section 7.4.1 (and the IANA registry for 1012–1015).
    Rfc6455,
}

/// File names of the seed documents, as they appear in `shared/seeds/`.
pub mod seeds {
    pub const TALO_SOCKET: &str = "talo-socket-errors.md";
    pub const TALO_HTTP: &str = "talo-http-errors.txt";
    pub const SIGNAL_FISH: &str = "signal-fish-error-codes.txt";
    pub const FLOW: &str = "flow-websocket-errors.md";
    pub const PUBSUB: &str = "pubsub-relay-errors.txt";
    pub const ALL: [&str; 5] = [TALO_SOCKET, TALO_HTTP, SIGNAL_FISH, FLOW, PUBSUB];
}

/// One documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub dialect: Dialect,
    /// The identifier on the wire: `ROOM_FULL`, `channel_not_authorized`, `4020` for a close,
    /// `429` or `MISSING_SESSION` for Talo HTTP, the message family
    /// (`subscription not found`) for Flow, whose errors carry no code string.
    pub code: &'static str,
    /// The HTTP status that carries the code (Talo HTTP responses, Flow `error.code`).
    pub status: Option<u16>,
    pub delivery: Delivery,
    pub category: Category,
    /// A few words naming the condition: `Room full`, `admin_disconnect`.
    pub title: &'static str,
    /// The text the server puts on the wire with this code: the `message` of an error frame,
    /// the reason of a close frame, the body message of an HTTP error. Empty when there is none.
    pub wire_text: &'static str,
    /// What happened, in a sentence or two.
    pub meaning: &'static str,
    pub retry: Retry,
    /// Set exactly when `retry` is [`Retry::AfterWindow`].
    pub window: Option<Window>,
    /// What the person reading this should do next.
    pub guidance: &'static str,
    /// The frame types or actions the code arrives in (`Error`, `RoomJoinFailed`, `v1.error`,
    /// `subscribe`); empty for closes and HTTP statuses.
    pub carriers: &'static [&'static str],
    /// A complete input that `relaydeck decode` turns back into this entry.
    pub example: &'static str,
    pub source: Source,
}

impl Entry {
    pub fn severity(&self) -> Severity {
        match (self.retry, self.category) {
            (Retry::None, _) => Severity::Info,
            (_, Category::Server) => Severity::Error,
            _ => Severity::Warning,
        }
    }

    /// The close code as a number, for close entries.
    pub fn close_code(&self) -> Option<u16> {
        match self.delivery {
            Delivery::Close => self.code.parse().ok(),
            _ => None,
        }
    }

    /// `dialect:code`, the unambiguous name used by `relaydeck explain` and session files.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.dialect.id(), self.code)
    }

    /// The seed document this entry is checked against, if any.
    pub fn seed(&self) -> Option<&'static str> {
        match self.source {
            Source::Seed(name) => Some(name),
            _ => None,
        }
    }
}

/// Every entry, grouped by dialect in [`Dialect::ALL`] order.
pub fn all() -> impl Iterator<Item = &'static Entry> {
    entries::TABLES.iter().flat_map(|table| table.iter())
}

/// Entries of one dialect.
pub fn of_dialect(dialect: Dialect) -> impl Iterator<Item = &'static Entry> {
    all().filter(move |e| e.dialect == dialect)
}

/// The entry with exactly this code in this dialect. Flow codes compare case-insensitively,
/// and `_`/`-` stand for spaces, so `subscription_not_found` finds `subscription not found`.
pub fn get(dialect: Dialect, code: &str) -> Option<&'static Entry> {
    of_dialect(dialect).find(|e| e.code == code || loose_eq(e.code, code))
}

/// The entry for a code a server of `dialect` sent as an error or close: its own code, or a
/// close number, which may be the WebSocket layer's (1002, 1007, …) on any dialect.
pub fn sent(dialect: Dialect, code: &str) -> Option<&'static Entry> {
    get(dialect, code).or_else(|| code.parse().ok().and_then(|number| close(dialect, number)))
}

/// The close entry for a numeric close code, preferring the given dialect, then the
/// RFC 6455 meaning, then any dialect that uses the number.
pub fn close(dialect: Dialect, code: u16) -> Option<&'static Entry> {
    let matches = |e: &&Entry| e.close_code() == Some(code);
    // Across dialects, a close that a system's own error page names is the better guess than
    // one relaydeck adds to a dialect (Signal Fish's 4020 is pub/sub's kick, sent everywhere).
    of_dialect(dialect)
        .find(matches)
        .or_else(|| of_dialect(Dialect::Websocket).find(matches))
        .or_else(|| all().filter(matches).min_by_key(|e| e.seed().is_none()))
}

/// Every entry whose code matches, across dialects, exact matches first.
pub fn by_code(code: &str) -> Vec<&'static Entry> {
    let mut found: Vec<&'static Entry> = all().filter(|e| e.code == code).collect();
    found.extend(all().filter(|e| e.code != code && loose_eq(e.code, code)));
    found
}

/// Entries matching every word of a free-text query (code, title, meaning, guidance, dialect,
/// category, retry policy), best matches (code hits) first.
pub fn search(query: &str) -> Vec<&'static Entry> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return all().collect();
    }
    let mut scored: Vec<(u32, usize, &'static Entry)> = all()
        .enumerate()
        .filter_map(|(index, entry)| {
            let haystack = entry_haystack(entry);
            let mut score = 0;
            for word in &words {
                if !haystack.contains(word.as_str()) {
                    return None;
                }
                if entry.code.to_lowercase().contains(word.as_str()) {
                    score += 10;
                }
                if entry.title.to_lowercase().contains(word.as_str()) {
                    score += 3;
                }
                score += 1;
            }
            Some((score, index, entry))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, entry)| entry).collect()
}

fn entry_haystack(entry: &Entry) -> String {
    let status = entry.status.map(|s| s.to_string()).unwrap_or_default();
    [
        entry.code,
        entry.title,
        entry.meaning,
        entry.guidance,
        entry.wire_text,
        entry.dialect.id(),
        entry.dialect.display_name(),
        entry.category.id(),
        entry.retry.id(),
        entry.delivery.id(),
        &status,
    ]
    .join("\n")
    .to_lowercase()
}

fn loose_eq(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> impl Iterator<Item = char> + '_ {
        s.trim().chars().map(|c| match c {
            '_' | '-' => ' ',
            other => other.to_ascii_lowercase(),
        })
    }
    norm(a).eq(norm(b))
}

#[cfg(test)]
mod tests;
