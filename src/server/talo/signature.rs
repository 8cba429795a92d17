//! Signed socket requests, for games that verify requests (`verification_keys` in the app's
//! Talo config). The facts are TaloDev/backend's `src/lib/auth/verify-signature.ts` and
//! `src/socket/router/socketRouter.ts`:
//!
//! - A frame is `<signature>\n<json>`: everything before the first newline is the signature.
//!   A frame without a newline is all JSON and carries no signature.
//! - Only requests of an identified player are checked; identify itself never is.
//! - The signature is `<key version>|<header>.<mac>`: `header` is base64 of
//!   `{"rid", "payload", "timestamp"}`, `payload` the hex SHA-256 of the JSON text, `mac` base64
//!   of HMAC-SHA256 over the header's base64 text with the key of that version.
//! - `timestamp` (milliseconds) must be within five minutes of the server's clock and not more
//!   than a minute older than the newest one accepted from the player; a `rid` is accepted once
//!   per player within ten minutes.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const LATEST_TIMESTAMP_WINDOW_MS: u64 = 60_000;
const CURRENT_TIMESTAMP_WINDOW_MS: u64 = 300_000;
const REQUEST_TTL_MS: u64 = 600_000;
/// Remembered request ids are swept of expired ones once there are this many.
const SWEEP_AT: usize = 4096;

/// Split a frame into its signature line and the JSON, when the game verifies requests.
pub fn split(frame: &str) -> (Option<&str>, &str) {
    match frame.split_once('\n') {
        Some((signature, json)) => (Some(signature), json),
        None => (None, frame),
    }
}

#[derive(Deserialize)]
struct Header {
    rid: String,
    payload: String,
    timestamp: u64,
}

/// Node's base64 decoder takes either alphabet, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What has been accepted per player: the newest timestamp and the request ids in use.
#[derive(Debug, Default)]
pub struct Replay {
    latest: HashMap<u64, u64>,
    rids: HashMap<(u64, String), u64>,
}

impl Replay {
    /// Whether `signature` signs `json` for `alias` with one of `keys`, at `now_ms`. Accepting
    /// a signature records its request id and timestamp.
    pub fn verify(
        &mut self,
        keys: &BTreeMap<String, String>,
        alias: u64,
        signature: &str,
        json: &str,
        now_ms: u64,
    ) -> bool {
        let Some((version, token)) = signature.split_once('|') else {
            return false;
        };
        let Some((header_b64, mac_b64)) = token.split_once('.') else {
            return false;
        };
        let Some(header) = decode_base64(header_b64)
            .and_then(|bytes| serde_json::from_slice::<Header>(&bytes).ok())
        else {
            return false;
        };
        let Some(key) = keys.get(version) else {
            return false;
        };
        if header.payload != hex(&Sha256::digest(json.as_bytes())) {
            return false;
        }
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) else {
            return false;
        };
        mac.update(header_b64.as_bytes());
        let Some(provided) = decode_base64(mac_b64) else {
            return false;
        };
        if mac.verify_slice(&provided).is_err() {
            return false;
        }
        let latest = self.latest.get(&alias).copied();
        if latest.is_some_and(|latest| {
            latest.saturating_sub(header.timestamp) > LATEST_TIMESTAMP_WINDOW_MS
        }) {
            return false;
        }
        if now_ms.abs_diff(header.timestamp) > CURRENT_TIMESTAMP_WINDOW_MS {
            return false;
        }
        if self.rids.len() >= SWEEP_AT {
            self.rids.retain(|_, expires| *expires > now_ms);
        }
        let rid = (alias, header.rid);
        if self.rids.get(&rid).is_some_and(|expires| *expires > now_ms) {
            return false;
        }
        self.rids.insert(rid, now_ms + REQUEST_TTL_MS);
        let newest = latest.unwrap_or(0).max(header.timestamp).min(now_ms);
        self.latest.insert(alias, newest);
        true
    }
}

/// A signature line for `json`, as a client that verifies requests makes one.
pub fn sign(version: &str, key: &str, rid: &str, json: &str, timestamp_ms: u64) -> String {
    let header = serde_json::json!({
        "rid": rid,
        "payload": hex(&Sha256::digest(json.as_bytes())),
        "timestamp": timestamp_ms,
    });
    let header_b64 = STANDARD.encode(header.to_string());
    let mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(header_b64.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(_) => Vec::new(),
    };
    format!("{version}|{header_b64}.{}", STANDARD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn keys() -> BTreeMap<String, String> {
        BTreeMap::from([("1".to_owned(), "secret".to_owned())])
    }

    #[test]
    fn a_signed_request_verifies_once() {
        let json = r#"{"req":"v1.channels.message","data":{}}"#;
        let signature = sign("1", "secret", "r1", json, NOW);
        let mut replay = Replay::default();
        assert!(replay.verify(&keys(), 7, &signature, json, NOW));
        assert!(
            !replay.verify(&keys(), 7, &signature, json, NOW),
            "replayed rid"
        );
        // Another player may use the same rid.
        assert!(replay.verify(&keys(), 8, &signature, json, NOW));
    }

    #[test]
    fn anything_off_fails() {
        let json = r#"{"req":"v1.channels.message","data":{}}"#;
        let mut replay = Replay::default();
        let cases = [
            sign("1", "wrong", "a", json, NOW),
            sign("2", "secret", "b", json, NOW),
            sign("1", "secret", "c", "{}", NOW),
            sign(
                "1",
                "secret",
                "d",
                json,
                NOW - CURRENT_TIMESTAMP_WINDOW_MS - 1,
            ),
            sign(
                "1",
                "secret",
                "e",
                json,
                NOW + CURRENT_TIMESTAMP_WINDOW_MS + 1,
            ),
            String::new(),
            "1".to_owned(),
            "1|nodot".to_owned(),
            "1|!!!.???".to_owned(),
        ];
        for signature in cases {
            assert!(
                !replay.verify(&keys(), 1, &signature, json, NOW),
                "{signature}"
            );
        }
    }

    #[test]
    fn timestamps_may_lag_the_newest_by_a_minute_at_most() {
        let json = "{}";
        let mut replay = Replay::default();
        assert!(replay.verify(&keys(), 1, &sign("1", "secret", "a", json, NOW), json, NOW));
        let lagging = NOW - LATEST_TIMESTAMP_WINDOW_MS;
        assert!(replay.verify(
            &keys(),
            1,
            &sign("1", "secret", "b", json, lagging),
            json,
            NOW
        ));
        let too_old = NOW - LATEST_TIMESTAMP_WINDOW_MS - 1;
        assert!(!replay.verify(
            &keys(),
            1,
            &sign("1", "secret", "c", json, too_old),
            json,
            NOW
        ));
    }

    #[test]
    fn frames_split_at_the_first_newline() {
        assert_eq!(
            split("sig\n{\"a\":\"b\nc\"}"),
            (Some("sig"), "{\"a\":\"b\nc\"}")
        );
        assert_eq!(split("{}"), (None, "{}"));
    }
}
