//! Faults on the path of a proxied connection, armed with the same `arm_fault` command as the
//! server-side codes: the `code` names what happens to the next frames one way through
//! `relaydeck proxy`, as a flaky network or server would do it.
//!
//! `drop`, `duplicate`, `corrupt`, `delay=MS` and `close=CODE`, each optionally followed by
//! `@client` (frames toward the client, the default) or `@upstream` (frames toward the
//! upstream). Each use acts on one data frame (text or binary) going that way; a close
//! acts on the next one instead of passing it on, and ends the connection.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest delay a fault may hold a frame for: longer looks like a dead connection,
/// which `close=…` reproduces better.
pub const MAX_DELAY_MS: u64 = 60_000;

/// Which way the frames a fault acts on travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// From the upstream to the client: what a flaky server or downlink does.
    Client,
    /// From the client to the upstream.
    Upstream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathFaultKind {
    /// The frame is not passed on.
    Drop,
    /// The frame is passed on twice.
    Duplicate,
    /// The frame is damaged and passed on: a text frame's second half is overwritten with
    /// `#` (still UTF-8, no longer the JSON it was), a binary frame's bytes are inverted.
    Corrupt,
    /// The frame, and those behind it, wait this long.
    Delay(Duration),
    /// Instead of the frame, both sides get a close with this code.
    Close(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathFault {
    pub kind: PathFaultKind,
    pub toward: Toward,
}

/// A close code an endpoint may send (RFC 6455 §7.4): 1005, 1006 and 1015 only describe a
/// close that had no code, and 1004 and 1016–2999 are reserved.
fn sendable_close(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl FromStr for PathFault {
    type Err = String;

    fn from_str(text: &str) -> Result<PathFault, String> {
        let (what, toward) = match text.split_once('@') {
            None => (text, Toward::Client),
            Some((what, "client")) => (what, Toward::Client),
            Some((what, "upstream")) => (what, Toward::Upstream),
            Some((_, other)) => {
                return Err(format!(
                    "{other:?} is not a direction: @client or @upstream"
                ))
            }
        };
        let (name, argument) = match what.split_once('=') {
            Some((name, argument)) => (name, Some(argument)),
            None => (what, None),
        };
        let kind = match (name, argument) {
            ("drop", None) => PathFaultKind::Drop,
            ("duplicate", None) => PathFaultKind::Duplicate,
            ("corrupt", None) => PathFaultKind::Corrupt,
            ("delay", Some(ms)) => match ms.parse::<u64>() {
                Ok(ms) if (1..=MAX_DELAY_MS).contains(&ms) => {
                    PathFaultKind::Delay(Duration::from_millis(ms))
                }
                _ => {
                    return Err(format!(
                        "delay={ms}: give milliseconds from 1 to {MAX_DELAY_MS}"
                    ))
                }
            },
            ("close", Some(code)) => match code.parse::<u16>() {
                Ok(code) if sendable_close(code) => PathFaultKind::Close(code),
                _ => {
                    return Err(format!(
                        "close={code}: give a close code that may be sent (1000–1003, 1007–1014, 3000–4999)"
                    ))
                }
            },
            ("delay", None) => return Err("delay=MS: how many milliseconds?".to_owned()),
            ("close", None) => return Err("close=CODE: which close code?".to_owned()),
            _ => {
                return Err(format!(
                    "{text:?} is not a path fault (drop, duplicate, corrupt, delay=MS, close=CODE, then @client or @upstream)"
                ))
            }
        };
        Ok(PathFault { kind, toward })
    }
}

/// The canonical spelling, direction included (`drop@client`), as armed faults are listed.
impl fmt::Display for PathFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PathFaultKind::Drop => f.write_str("drop")?,
            PathFaultKind::Duplicate => f.write_str("duplicate")?,
            PathFaultKind::Corrupt => f.write_str("corrupt")?,
            PathFaultKind::Delay(delay) => write!(f, "delay={}", delay.as_millis())?,
            PathFaultKind::Close(code) => write!(f, "close={code}")?,
        }
        f.write_str(match self.toward {
            Toward::Client => "@client",
            Toward::Upstream => "@upstream",
        })
    }
}

impl PathFault {
    /// Whether an armed fault's code is a path fault rather than a server-side error code.
    /// No catalog code contains `@` or `=`, nor is one of the bare names.
    pub fn is_path_fault(code: &str) -> bool {
        code.parse::<PathFault>().is_ok()
    }

    /// Whether `code` was meant as a path fault (it starts with one's name), so that a
    /// mistake in it is answered as one rather than as a code missing from the catalog.
    pub fn meant(code: &str) -> bool {
        let name = code.split(['=', '@']).next().unwrap_or_default();
        matches!(name, "drop" | "duplicate" | "corrupt" | "delay" | "close")
    }

    /// What arming it `count` times does, for a confirmation question: "drop the next 2
    /// frames toward the client".
    pub fn describe(&self, count: u32) -> String {
        let toward = match self.toward {
            Toward::Client => "toward the client",
            Toward::Upstream => "toward the upstream",
        };
        let frames = if count == 1 {
            "frame".to_owned()
        } else {
            format!("{count} frames")
        };
        match self.kind {
            PathFaultKind::Drop => format!("drop the next {frames} {toward}"),
            PathFaultKind::Duplicate => format!("duplicate the next {frames} {toward}"),
            PathFaultKind::Corrupt => format!("corrupt the next {frames} {toward}"),
            PathFaultKind::Delay(delay) => {
                format!(
                    "delay the next {frames} {toward} by {} ms",
                    delay.as_millis()
                )
            }
            PathFaultKind::Close(code) => {
                format!("close the connection with {code} at the next frame {toward}")
            }
        }
    }
}

/// A text frame damaged as [`PathFaultKind::Corrupt`] says: same length, still UTF-8.
pub fn corrupt_text(text: &str) -> String {
    let half = text.len() / 2;
    let cut = (half..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    let mut damaged = String::with_capacity(text.len());
    damaged.push_str(&text[..cut]);
    damaged.extend(std::iter::repeat_n('#', text.len() - cut));
    damaged
}

/// A binary frame damaged as [`PathFaultKind::Corrupt`] says: every byte inverted.
pub fn corrupt_binary(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| !b).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn path_faults_read_and_print_in_one_spelling() {
        for (given, canonical) in [
            ("drop", "drop@client"),
            ("duplicate@upstream", "duplicate@upstream"),
            ("corrupt@client", "corrupt@client"),
            ("delay=250", "delay=250@client"),
            ("close=4000@upstream", "close=4000@upstream"),
        ] {
            let fault: PathFault = given.parse().unwrap();
            assert_eq!(fault.to_string(), canonical);
            assert_eq!(canonical.parse::<PathFault>().unwrap(), fault);
        }
        for refused in [
            "drop@sideways",
            "delay",
            "delay=0",
            "delay=600000",
            "close=1006",
            "close=abc",
            "drop=3",
            "INTERNAL_ERROR",
            "internal error",
            "",
        ] {
            assert!(refused.parse::<PathFault>().is_err(), "{refused}");
        }
    }

    #[test]
    fn no_catalog_code_reads_as_a_path_fault() {
        for entry in crate::catalog::all() {
            assert!(!PathFault::is_path_fault(entry.code), "{}", entry.code);
            assert!(!PathFault::meant(entry.code), "{}", entry.code);
        }
    }

    #[test]
    fn corruption_keeps_the_length_and_breaks_the_json() {
        let frame = r#"{"type":"Pong"}"#;
        let damaged = corrupt_text(frame);
        assert_eq!(damaged.len(), frame.len());
        assert!(serde_json::from_str::<serde_json::Value>(&damaged).is_err());
        let accented = "é{}ééé";
        assert_eq!(corrupt_text(accented).len(), accented.len());
        assert_eq!(corrupt_text(""), "");
        assert_eq!(corrupt_binary(&[0x00, 0xf0]), vec![0xff, 0x0f]);
    }
}
