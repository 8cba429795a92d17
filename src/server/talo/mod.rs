//! The Talo dialect: the HTTP API that hands out tickets, socket tokens and sessions
//! ([`http`]), and the socket that players identify on and chat through ([`socket`]); what
//! crosses to the other nodes of a cluster, and its handler there, in [`remote`].
//!
//! This module holds what both share: aliases, single-use tickets (5 minutes), socket tokens
//! (1 hour, replaced on every identify), sessions of `talo`-service players, and the HTTP rate
//! windows.

pub mod entities;
pub mod http;
pub mod js_json;
pub mod password;
pub mod rate_limit;
pub mod remote;
pub mod signature;
pub mod socket;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::clock::now_ms;
use crate::server::config::{Config, TaloAccessKey, TaloApp};
use crate::server::rate_limit::FixedWindow;

pub const TICKET_TTL_MS: u64 = 5 * 60 * 1000;
pub const SOCKET_TOKEN_TTL_MS: u64 = 60 * 60 * 1000;
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
pub const REQUESTS_PER_MINUTE: u32 = 100;
pub const AUTH_REQUESTS_PER_MINUTE: u32 = 20;
const MAX_TRACKED_WINDOWS: usize = 4096;
/// Longest `identifier` and `service` accepted (characters): what is stored per player and
/// used as a rate key stays small.
pub const MAX_IDENTIFIER_CHARS: usize = 255;
/// Longest password accepted (characters); Argon2 would hash any length, slowly.
pub const MAX_PASSWORD_CHARS: usize = 512;
/// Players `identify` may create in one game (configured players do not count).
pub const MAX_CREATED_PLAYERS_PER_APP: usize = 10_000;

/// Why `identify` gave no alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyRefusal {
    /// A `talo` player that does not exist (only the auth API makes them).
    NotFound,
    /// The game has [`MAX_CREATED_PLAYERS_PER_APP`] players made by `identify`.
    GameFull,
}

/// Server-wide Talo socket settings (`"talo"` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaloSettings {
    /// Requests a second a connection may send before it identifies a player (documented: 25).
    pub unidentified_per_second: u32,
    /// Requests a second once a player is identified (documented: 250).
    pub identified_per_second: u32,
    /// The server pings every socket this often and drops one that did not answer the previous
    /// ping (Talo's heartbeat: 30 s); 0 turns pings off.
    pub ping_interval_ms: u64,
}

impl Default for TaloSettings {
    fn default() -> Self {
        TaloSettings {
            unidentified_per_second: rate_limit::UNIDENTIFIED_PER_SECOND,
            identified_per_second: rate_limit::IDENTIFIED_PER_SECOND,
            ping_interval_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub id: u64,
    pub app: String,
    pub service: String,
    pub identifier: String,
    pub created_ms: u64,
}

/// A player's presence: online, and when that last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    pub updated_ms: u64,
}

/// Milliseconds since the epoch as Talo's API writes dates (`2026-12-01T06:31:53.123Z`).
pub fn iso_date(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// What the server knows of one socket connection once it has identified a player: whom it
/// speaks for and the access key it connected with (recipients are chosen by the key's scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPlayer {
    pub app: String,
    pub alias: u64,
    pub identifier: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub app: String,
    pub key: String,
    issued_ms: u64,
}

#[derive(Default)]
struct State {
    /// Alias id `n` is at `aliases[n - 1]`.
    aliases: Vec<Alias>,
    /// (app, service, identifier) → alias id, so that identify is not a scan of every alias.
    alias_ids: HashMap<(String, String, String), u64>,
    /// App → players `identify` created in it.
    created: HashMap<String, usize>,
    tickets: HashMap<String, Ticket>,
    /// Alias id → (socket token, issued).
    socket_tokens: HashMap<u64, (String, u64)>,
    /// Alias id → session token.
    sessions: HashMap<u64, String>,
    /// Alias id → when its current session was made (`PlayerAuth.sessionCreatedAt`).
    session_created: HashMap<u64, u64>,
    /// (endpoint class, caller) → (window start, count).
    windows: HashMap<(bool, String), FixedWindow>,
    /// Alias id → presence, once the player has been on a socket.
    presence: HashMap<u64, Presence>,
    /// (app, channel id) → messages sent in it.
    channel_messages: HashMap<(String, u64), u64>,
    /// Peer id → the player its socket identified.
    sockets: HashMap<String, SocketPlayer>,
    /// Accepted request signatures, per player across connections (upstream keeps them in
    /// Redis).
    signatures: signature::Replay,
}

pub struct Talo {
    state: Mutex<State>,
    /// When the server started: the creation date of configured players and channels.
    pub started_ms: u64,
    /// (app, identifier) → Argon2id PHC string, for `talo`-service players.
    passwords: HashMap<(String, String), String>,
}

/// A hash no password matches, verified against for players that do not exist.
fn unknown_player_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash(&random_token()).unwrap_or_default())
}

pub fn random_token() -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    (0..24)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Talo {
    pub fn new(config: &Config) -> Talo {
        let mut state = State::default();
        let mut passwords = HashMap::new();
        let started_ms = now_ms();
        for app in &config.apps {
            let Some(talo) = &app.talo else { continue };
            for player in &talo.players {
                let id = state.aliases.len() as u64 + 1;
                state.alias_ids.insert(
                    (
                        app.id.clone(),
                        player.service.clone(),
                        player.identifier.clone(),
                    ),
                    id,
                );
                state.aliases.push(Alias {
                    id,
                    app: app.id.clone(),
                    service: player.service.clone(),
                    identifier: player.identifier.clone(),
                    created_ms: started_ms,
                });
                let stored = match (&player.password_hash, &player.password) {
                    (Some(phc), _) => Some(phc.clone()),
                    (None, Some(plain)) => match password::hash(plain) {
                        Ok(phc) => Some(phc),
                        Err(e) => {
                            tracing::error!(player = %player.identifier, "{e}; this player cannot log in");
                            None
                        }
                    },
                    (None, None) => None,
                };
                if let Some(phc) = stored {
                    passwords.insert((app.id.clone(), player.identifier.clone()), phc);
                }
            }
        }
        Talo {
            state: Mutex::new(state),
            started_ms,
            passwords,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app and access key for a Bearer key.
    pub fn access_key<'a>(
        config: &'a Config,
        key: &str,
    ) -> Option<(&'a str, &'a TaloApp, &'a TaloAccessKey)> {
        config.apps.iter().find_map(|app| {
            let talo = app.talo.as_ref()?;
            talo.access_keys
                .iter()
                .find(|k| {
                    bool::from(subtle::ConstantTimeEq::ct_eq(
                        k.key.as_bytes(),
                        key.as_bytes(),
                    ))
                })
                .map(|k| (app.id.as_str(), talo, k))
        })
    }

    pub fn issue_ticket(&self, app: &str, key: &str) -> String {
        let ticket = random_token();
        let mut state = self.lock();
        let now = now_ms();
        state
            .tickets
            .retain(|_, t| now.saturating_sub(t.issued_ms) < TICKET_TTL_MS);
        state.tickets.insert(
            ticket.clone(),
            Ticket {
                app: app.to_owned(),
                key: key.to_owned(),
                issued_ms: now,
            },
        );
        ticket
    }

    /// Use a ticket: valid, unused and younger than five minutes.
    pub fn redeem_ticket(&self, ticket: &str) -> Option<Ticket> {
        let mut state = self.lock();
        let found = state.tickets.remove(ticket)?;
        (now_ms().saturating_sub(found.issued_ms) < TICKET_TTL_MS).then_some(found)
    }

    /// The alias of a player, created on first identify (as Talo does) except for `talo`
    /// players, who must exist.
    pub fn identify(&self, app: &str, service: &str, identifier: &str) -> Option<Alias> {
        self.identify_checked(app, service, identifier).ok()
    }

    /// [`Talo::identify`], saying why there is no alias.
    pub fn identify_checked(
        &self,
        app: &str,
        service: &str,
        identifier: &str,
    ) -> Result<Alias, IdentifyRefusal> {
        let mut state = self.lock();
        let key = (app.to_owned(), service.to_owned(), identifier.to_owned());
        if let Some(id) = state.alias_ids.get(&key) {
            let found = usize::try_from(*id)
                .ok()
                .and_then(|id| state.aliases.get(id.wrapping_sub(1)));
            if let Some(alias) = found {
                return Ok(alias.clone());
            }
        }
        if service == "talo" {
            return Err(IdentifyRefusal::NotFound);
        }
        let created = state.created.get(app).copied().unwrap_or(0);
        if created >= MAX_CREATED_PLAYERS_PER_APP {
            return Err(IdentifyRefusal::GameFull);
        }
        let alias = Alias {
            id: state.aliases.len() as u64 + 1,
            app: app.to_owned(),
            service: service.to_owned(),
            identifier: identifier.to_owned(),
            created_ms: now_ms(),
        };
        state.aliases.push(alias.clone());
        state.alias_ids.insert(key, alias.id);
        *state.created.entry(app.to_owned()).or_default() += 1;
        Ok(alias)
    }

    pub fn alias(&self, app: &str, id: u64) -> Option<Alias> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.lock()
            .aliases
            .get(index)
            .filter(|a| a.app == app)
            .cloned()
    }

    pub fn presence(&self, alias: u64) -> Option<Presence> {
        self.lock().presence.get(&alias).copied()
    }

    /// Record a player going on- or offline; returns whether `online` changed.
    pub fn set_presence(&self, alias: u64, online: bool) -> bool {
        let mut state = self.lock();
        let previous = state.presence.insert(
            alias,
            Presence {
                online,
                updated_ms: now_ms(),
            },
        );
        // A player never seen before was offline, as a new presence row is upstream.
        previous.is_some_and(|p| p.online) != online
    }

    /// Count a message in a channel; returns the total before it (what the message carries:
    /// upstream counts it after fan-out).
    pub fn count_channel_message(&self, app: &str, channel: u64) -> u64 {
        let mut state = self.lock();
        let total = state
            .channel_messages
            .entry((app.to_owned(), channel))
            .or_insert(0);
        let before = *total;
        *total += 1;
        before
    }

    /// Whether a signed request of `alias` verifies with the game's keys.
    pub fn verify_signature(
        &self,
        keys: &std::collections::BTreeMap<String, String>,
        alias: u64,
        signature: &str,
        json: &str,
    ) -> bool {
        self.lock()
            .signatures
            .verify(keys, alias, signature, json, now_ms())
    }

    pub fn bind_socket(&self, peer: &str, player: SocketPlayer) {
        self.lock().sockets.insert(peer.to_owned(), player);
    }

    pub fn unbind_socket(&self, peer: &str) -> Option<SocketPlayer> {
        self.lock().sockets.remove(peer)
    }

    /// The player a socket identified, if any.
    pub fn socket(&self, peer: &str) -> Option<SocketPlayer> {
        self.lock().sockets.get(peer).cloned()
    }

    /// A new socket token for the alias, replacing any earlier one.
    pub fn new_socket_token(&self, alias: u64) -> String {
        let token = random_token();
        self.lock()
            .socket_tokens
            .insert(alias, (token.clone(), now_ms()));
        token
    }

    pub fn socket_token_valid(&self, alias: u64, token: &str) -> bool {
        self.lock()
            .socket_tokens
            .get(&alias)
            .is_some_and(|(current, issued)| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    current.as_bytes(),
                    token.as_bytes(),
                )) && now_ms().saturating_sub(*issued) < SOCKET_TOKEN_TTL_MS
            })
    }

    /// Verifying a password takes tens of milliseconds by design: call it off the async
    /// workers (`spawn_blocking`).
    pub fn login(&self, app: &str, identifier: &str, password: &str) -> Option<(Alias, String)> {
        let Some(stored) = self.passwords.get(&(app.to_owned(), identifier.to_owned())) else {
            // An unknown player costs what a known one does, so that the time of the answer
            // does not say which identifiers exist.
            let _ = password::verify(unknown_player_hash(), password);
            return None;
        };
        if !password::verify(stored, password) {
            return None;
        }
        let alias = self.identify(app, "talo", identifier)?;
        let session = random_token();
        let mut state = self.lock();
        state.sessions.insert(alias.id, session.clone());
        state.session_created.insert(alias.id, now_ms());
        Some((alias, session))
    }

    /// A `talo`-service alias's `player.auth`, as upstream loads it for identify and login;
    /// other services have none.
    pub fn auth(&self, alias: &Alias) -> Option<entities::Auth> {
        (alias.service == "talo").then(|| entities::Auth {
            session_created_ms: self.lock().session_created.get(&alias.id).copied(),
        })
    }

    pub fn session_valid(&self, alias: u64, session: &str) -> bool {
        self.lock().sessions.get(&alias).is_some_and(|current| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                current.as_bytes(),
                session.as_bytes(),
            ))
        })
    }

    /// Count a request in its fixed one-minute window; `Err(seconds until the window resets)`
    /// once over the limit.
    pub fn rate_limit(&self, auth_endpoint: bool, caller: &str) -> Result<(), u64> {
        let limit = if auth_endpoint {
            AUTH_REQUESTS_PER_MINUTE
        } else {
            REQUESTS_PER_MINUTE
        };
        let now = Instant::now();
        let mut state = self.lock();
        // Every new caller opens a window; forget the finished ones before the map can grow
        // without bound under a stream of made-up identifiers.
        let key = (auth_endpoint, caller.to_owned());
        if state.windows.len() >= MAX_TRACKED_WINDOWS && !state.windows.contains_key(&key) {
            state.windows.retain(|_, window| !window.rolled_over(now));
            // Still full of live windows: a flood of new callers within one minute. New
            // callers wait for windows to end rather than grow the table.
            if state.windows.len() >= MAX_TRACKED_WINDOWS {
                return Err(RATE_WINDOW.as_secs());
            }
        }
        let window = state
            .windows
            .entry(key)
            .or_insert_with(|| FixedWindow::new(RATE_WINDOW, now));
        if window.hit(now) > limit {
            return Err(window.remaining(now).as_millis().div_ceil(1000).max(1) as u64);
        }
        Ok(())
    }

    /// Members of a game channel, by player identifier.
    pub fn channel<'a>(
        config: &'a Config,
        app: &str,
        id: u64,
    ) -> Option<&'a crate::server::config::TaloChannel> {
        config
            .app(app)?
            .talo
            .as_ref()?
            .channels
            .iter()
            .find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn identify_creates_a_bounded_number_of_players_per_game_and_finds_them_by_key() {
        let talo = Talo::new(&Config::demo());
        for n in 0..MAX_CREATED_PLAYERS_PER_APP {
            talo.identify_checked("demo", "username", &format!("p{n}"))
                .unwrap();
        }
        assert_eq!(
            talo.identify_checked("demo", "username", "one-more"),
            Err(IdentifyRefusal::GameFull)
        );
        // Known players are still found, and another game is not affected.
        let known = talo.identify_checked("demo", "username", "p7").unwrap();
        assert_eq!(talo.alias("demo", known.id).unwrap(), known);
        assert!(talo.identify_checked("other", "username", "p7").is_ok());
        assert_eq!(
            talo.identify_checked("demo", "talo", "nobody"),
            Err(IdentifyRefusal::NotFound)
        );
    }

    #[test]
    fn the_rate_table_never_grows_past_its_bound() {
        let talo = Talo::new(&Config::demo());
        for n in 0..MAX_TRACKED_WINDOWS + 100 {
            let _ = talo.rate_limit(true, &format!("caller-{n}"));
        }
        assert!(talo.lock().windows.len() <= MAX_TRACKED_WINDOWS);
        assert!(
            talo.rate_limit(true, "caller-5").is_ok(),
            "known callers keep their window"
        );
        assert!(talo.rate_limit(true, "caller-new").is_err());
    }
}
