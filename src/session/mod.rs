//! Session files: a reproduction of an exchange with a server, replayable headless.
//!
//! # Format
//! JSONL. The first line is the header, every other non-empty line one step. Lines starting
//! with `//` are comments.
//!
//! ```text
//! {"session":1,"name":"pubsub channel_not_authorized","description":"…","dialect":"pubsub","expect_codes":["pubsub:channel_not_authorized"]}
//! {"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
//! {"step":"expect","conn":"a","match":{"type":"welcome"},"capture":{"me":"/peerId"}}
//! {"step":"send","conn":"a","frame":{"type":"subscribe","channel":"other-app/room-1","requestId":"s-1"}}
//! {"step":"expect","conn":"a","code":"channel_not_authorized"}
//! {"step":"admin","command":{"command":"kick","peer":"${peer:a}"}}
//! {"step":"expect_close","conn":"a","code":4020,"reason":"admin_disconnect"}
//! ```
//!
//! Steps:
//! - `connect {conn, path, headers?, expect_status?}` opens a WebSocket named `conn` on the
//!   server (`path` includes the query and starts with `/`: a session never names a host).
//!   With `expect_status`, the upgrade is expected to be refused with that HTTP status instead.
//! - `send {conn, frame | text, repeat?, pad_to?, binary?}` sends a JSON `frame` or a raw `text`,
//!   `repeat` times; `pad_to` pads the text with spaces to that many bytes (for size limits);
//!   `binary` sends the bytes as a binary frame.
//! - `expect {conn, code?, match?, capture?, timeout_ms?}` waits (default 5 s, at most 60 s)
//!   for the next frame that is an error with `code` (bare or `dialect:code`), or that contains
//!   `match` (a JSON subset).
//!   Frames that are not errors are skipped while waiting; an error with another code is a
//!   mismatch. `capture` stores values (by JSON pointer) into variables.
//! - `expect_close {conn, code, reason?, timeout_ms?}` waits (the same) for the server to close
//!   `conn`.
//! - `close {conn, code?}` closes `conn` from the client side.
//! - `http {method, path, headers?, body?, repeat?, expect_status?, expect_code?, capture?}`
//!   sends an HTTP request (`repeat` times, checking the last) to a path of the server (like
//!   `connect`, the path starts with `/`); `expect_code` is decoded from the response like a
//!   pasted status and body.
//! - `admin {command, expect_ok?, capture?}` sends an admin protocol command (without its
//!   `id`) over `/admin` and checks the result's `ok` (default true). `relaydeck replay --url`
//!   runs these only with `--allow-admin`.
//! - `wait {ms}` pauses (at most 60 s), for windows that must pass.
//!
//! # Limits
//! A session file is input like any other: it may come from a bug report. Every step is
//! checked when the file is read and again once `${…}` variables are substituted.
//!
//! | what | limit |
//! |---|---|
//! | `wait.ms` | [`MAX_WAIT_MS`] (60 s) |
//! | `timeout_ms` of `expect` and `expect_close` | [`MAX_TIMEOUT_MS`] (60 s) |
//! | all waits and timeouts of a session together, and its whole run | [`MAX_SESSION_MS`] (10 min) |
//! | `repeat` | [`MAX_REPEAT`] (100,000) |
//! | `pad_to` | [`MAX_PAD_BYTES`] (16 MiB) |
//! | bytes one `send` step puts on the wire (size × `repeat`) | [`MAX_SEND_BYTES`] (64 MiB) |
//! | `path` of `connect` and `http` | starts with `/`, no whitespace or control characters |
//!
//! Any string in a step may contain `${name}`: a variable captured earlier, or `${peer:conn}`,
//! the server's peer id of connection `conn` (learnt from the admin snapshot and deltas by
//! matching the connection's local address). A Flow stream's `connect` may carry the header
//! `"Authorization": "Bearer ${admin_token}"`: the admin token of the replay's target
//! (exported Flow streams present it, since the credential the peer used is not recorded). It
//! counts as an admin step, and `${admin_token}` means nothing anywhere else. A string that is exactly `"${name}"` becomes the
//! captured JSON value itself, so a captured number stays a number.
//!
//! Sessions that depend on timers (authentication and activity timeouts, reconnection windows)
//! are written for [`crate::server::config::Config::for_replay`], the configuration of the
//! embedded server `relaydeck replay` starts when no `--url` is given.

pub mod export;
pub mod replay;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Dialect;

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Longest `wait` a session may ask for.
pub const MAX_WAIT_MS: u64 = 60_000;

/// Largest `pad_to`: frames beyond it are refused by every dialect long before.
pub const MAX_PAD_BYTES: usize = 16 << 20;

/// Most repetitions of one `send` or `http` step.
pub const MAX_REPEAT: u32 = 100_000;

/// Default receive timeout of `expect` and `expect_close`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// Longest `timeout_ms` of `expect` and `expect_close`.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Longest a whole session may run, and the most its waits and timeouts may add up to.
pub const MAX_SESSION_MS: u64 = 600_000;

/// Most bytes one `send` step may put on the wire (the frame's size times `repeat`).
pub const MAX_SEND_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format version, [`FORMAT_VERSION`].
    pub session: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub dialect: Dialect,
    /// Every code this session reproduces, as `dialect:code`.
    #[serde(default)]
    pub expect_codes: Vec<String>,
    /// How the real server of the dialect answers this session: `"same"` when it passes
    /// against it too (`scripts/compare-signal-fish.sh` replays it against both), otherwise a
    /// sentence saying why it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Connect {
        conn: String,
        path: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
    },
    Send {
        conn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pad_to: Option<usize>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        binary: bool,
    },
    Expect {
        conn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
        matches: Option<Value>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        capture: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    ExpectClose {
        conn: String,
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    Close {
        conn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
    },
    Http {
        method: String,
        path: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
        /// Send the request this many times and check the last response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_code: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        capture: BTreeMap<String, String>,
    },
    Admin {
        command: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_ok: Option<bool>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        capture: BTreeMap<String, String>,
    },
    Wait {
        ms: u64,
    },
}

impl Step {
    /// A one-line description for progress output.
    pub fn describe(&self) -> String {
        match self {
            Step::Connect {
                conn,
                path,
                expect_status,
                ..
            } => match expect_status {
                Some(status) => format!("connect {conn} {path} (expect HTTP {status})"),
                None => format!("connect {conn} {path}"),
            },
            Step::Send {
                conn,
                frame,
                text,
                repeat,
                pad_to,
                binary,
            } => {
                let body = match (frame, text) {
                    (Some(frame), _) => frame.to_string(),
                    (None, Some(text)) => format!("{text:?}"),
                    (None, None) => "(empty)".to_owned(),
                };
                let mut line = format!(
                    "send {conn}{} {}",
                    if *binary { " binary" } else { "" },
                    crate::text::one_line(&body, 90)
                );
                if let Some(size) = pad_to {
                    line.push_str(&format!(" padded to {size} bytes"));
                }
                if let Some(times) = repeat.filter(|r| *r > 1) {
                    line.push_str(&format!(" ×{times}"));
                }
                line
            }
            Step::Expect {
                conn,
                code,
                matches,
                ..
            } => match (code, matches) {
                (Some(code), _) => format!("expect {conn} error {code}"),
                (None, Some(m)) => format!(
                    "expect {conn} {}",
                    crate::text::one_line(&m.to_string(), 90)
                ),
                (None, None) => format!("expect {conn} any frame"),
            },
            Step::ExpectClose {
                conn, code, reason, ..
            } => match reason {
                Some(reason) => format!("expect {conn} close {code} {reason}"),
                None => format!("expect {conn} close {code}"),
            },
            Step::Close { conn, code } => match code {
                Some(code) => format!("close {conn} with {code}"),
                None => format!("close {conn}"),
            },
            Step::Http {
                method,
                path,
                expect_status,
                expect_code,
                ..
            } => {
                let mut line = format!("http {method} {path}");
                if let Some(status) = expect_status {
                    line.push_str(&format!(" → {status}"));
                }
                if let Some(code) = expect_code {
                    line.push_str(&format!(" {code}"));
                }
                line
            }
            Step::Admin { command, .. } => {
                format!("admin {}", crate::text::one_line(&command.to_string(), 90))
            }
            Step::Wait { ms } => format!("wait {ms} ms"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub header: Header,
    pub steps: Vec<Step>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{location}: the file is empty; a session starts with a header line")]
    Empty { location: String },
    #[error("{location}: line {line}: {message}")]
    Line {
        location: String,
        line: usize,
        message: String,
    },
}

impl Session {
    /// Parse a session; `location` names the source in errors (a path or `<stdin>`).
    pub fn parse(text: &str, location: &str) -> Result<Session, SessionError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with("//"));
        let (header_line, header_text) = lines.next().ok_or_else(|| SessionError::Empty {
            location: location.to_owned(),
        })?;
        let line_error = |line: usize, message: String| SessionError::Line {
            location: location.to_owned(),
            line,
            message,
        };
        let header: Header = serde_json::from_str(header_text)
            .map_err(|e| line_error(header_line, format!("bad header: {e}")))?;
        if header.session != FORMAT_VERSION {
            return Err(line_error(
                header_line,
                format!(
                    "session format {} is not supported (this relaydeck reads format {FORMAT_VERSION})",
                    header.session
                ),
            ));
        }
        let mut steps = Vec::new();
        let mut budget_ms = 0u64;
        for (line, text) in lines {
            let step: Step = serde_json::from_str(text)
                .map_err(|e| line_error(line, format!("bad step: {e}")))?;
            step.check(true)
                .map_err(|message| line_error(line, message))?;
            budget_ms = budget_ms.saturating_add(step.time_budget_ms());
            if budget_ms > MAX_SESSION_MS {
                return Err(line_error(
                    line,
                    format!(
                        "the waits and timeouts up to here add up to {} s; a session may take at most {} s",
                        budget_ms / 1000,
                        MAX_SESSION_MS / 1000
                    ),
                ));
            }
            steps.push(step);
        }
        Ok(Session { header, steps })
    }

    pub fn load(path: &Path) -> Result<Session, SessionError> {
        let text = std::fs::read_to_string(path).map_err(|source| SessionError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Session::parse(&text, &path.display().to_string())
    }

    /// Whether any step acts as the server's admin.
    /// Admin commands, or a connection that presents the admin token: either needs the
    /// operator's consent (`--allow-admin`, or the console's confirmation).
    pub fn has_admin_steps(&self) -> bool {
        self.steps.iter().any(|s| match s {
            Step::Admin { .. } => true,
            Step::Connect { headers, .. } => replay::presents_admin_token(headers),
            _ => false,
        })
    }

    /// The longest the session's waits and receive timeouts can take together.
    pub fn time_budget_ms(&self) -> u64 {
        self.steps.iter().map(Step::time_budget_ms).sum()
    }

    /// The JSONL text of the session: header, then one step per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        // Serializing these plain data types cannot fail: every map key is a string.
        out.push_str(&serde_json::to_string(&self.header).unwrap_or_default());
        out.push('\n');
        for step in &self.steps {
            out.push_str(&serde_json::to_string(step).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}

impl Step {
    /// Check a step ready to run (variables substituted) against the documented limits.
    pub fn validate(&self) -> Result<(), String> {
        self.check(false)
    }

    /// As read from a file, a path may start with a variable (a path captured from an
    /// answer); it is checked once substituted. Every other limit holds already.
    fn check(&self, variables_pending: bool) -> Result<(), String> {
        if let Step::Connect { path, .. } | Step::Http { path, .. } = self {
            if !(variables_pending && path.starts_with("${")) {
                path_problem(path)?;
            }
        }
        match self {
            Step::Send { pad_to: Some(size), .. } if *size > MAX_PAD_BYTES => {
                Err(format!("pad_to is limited to {MAX_PAD_BYTES} bytes"))
            }
            Step::Send { repeat: Some(n), .. } | Step::Http { repeat: Some(n), .. } if *n > MAX_REPEAT => {
                Err(format!("repeat is limited to {MAX_REPEAT}"))
            }
            Step::Send { frame, text, repeat, pad_to, .. } => {
                let size = match (frame, text) {
                    (Some(_), Some(_)) => return Err("send takes either `frame` or `text`, not both".to_owned()),
                    (None, None) => return Err("send needs `frame` (JSON) or `text` (raw)".to_owned()),
                    (Some(frame), None) => frame.to_string().len(),
                    (None, Some(text)) => text.len(),
                };
                let total = size.max(pad_to.unwrap_or(0)).saturating_mul(repeat.unwrap_or(1).max(1) as usize);
                if total > MAX_SEND_BYTES {
                    return Err(format!(
                        "this step would send {total} bytes; one send step may send at most {MAX_SEND_BYTES} (size × repeat)"
                    ));
                }
                Ok(())
            }
            Step::Expect { code, matches, .. } if code.is_none() && matches.is_none() => {
                Err("expect needs `code` or `match`".to_owned())
            }
            Step::Expect { timeout_ms: Some(ms), .. } | Step::ExpectClose { timeout_ms: Some(ms), .. }
                if *ms > MAX_TIMEOUT_MS =>
            {
                Err(format!("timeout_ms is limited to {MAX_TIMEOUT_MS} ms"))
            }
            Step::Wait { ms } if *ms > MAX_WAIT_MS => {
                Err(format!("wait is limited to {MAX_WAIT_MS} ms"))
            }
            Step::Admin { command, .. } if command.get("command").and_then(Value::as_str).is_none() => {
                Err("admin needs `command` to be an admin protocol command object with a \"command\" field".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// The longest this step waits on purpose or for the server.
    pub fn time_budget_ms(&self) -> u64 {
        match self {
            Step::Wait { ms } => *ms,
            Step::Expect { timeout_ms, .. } | Step::ExpectClose { timeout_ms, .. } => {
                timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)
            }
            _ => 0,
        }
    }
}

/// Why `path` cannot be sent to the server, if it cannot. Requests are built as
/// `scheme://host:port` followed by the path, so anything but a leading `/` would let the file
/// choose the host (`@elsewhere/x` becomes user info before another host).
pub fn path_problem(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(format!(
            "path {:?} must be a path on the server, starting with a single /",
            crate::text::one_line(path, 80)
        ));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("path may not contain whitespace or control characters".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
