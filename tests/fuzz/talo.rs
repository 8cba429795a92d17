//! Talo socket frames, in the order a session reads them: the signature line
//! (`server::talo::signature::{split, Replay::verify}`, for games that verify requests), then
//! `protocol::talo::{envelope, request}`, and the `error_frame` a refusal is answered with.

use std::collections::BTreeMap;

use super::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use relaydeck::catalog::{self, Dialect};
use relaydeck::protocol::talo::{
    envelope, error_frame, request, BroadcastData, ChannelMessageData, ChannelRef, IdentifyData,
    NotAnEnvelope, Request, RequestKind, HEARTBEAT,
};
use relaydeck::server::talo::signature::{sign, split, Replay};

fn data_of(request: &Request) -> (RequestKind, Value) {
    match request {
        Request::Identify(d) => (RequestKind::Identify, serde_json::to_value(d).unwrap()),
        Request::ChannelMessage(d) => (
            RequestKind::ChannelMessage,
            serde_json::to_value(d).unwrap(),
        ),
        Request::RelationshipBroadcast(d) => (
            RequestKind::RelationshipBroadcast,
            serde_json::to_value(d).unwrap(),
        ),
    }
}

fn encode(request: &Request) -> String {
    let (kind, data) = data_of(request);
    json!({"req": kind.name(), "data": data}).to_string()
}

fn well_formed() -> BoxedStrategy<Request> {
    prop_oneof![
        (any::<u64>(), short_text(), optional(short_text())).prop_map(|(id, token, session)| {
            Request::Identify(IdentifyData {
                player_alias_id: id,
                socket_token: token,
                session_token: session,
            })
        }),
        (any::<u64>(), short_text()).prop_map(|(id, message)| {
            Request::ChannelMessage(ChannelMessageData {
                channel: ChannelRef { id },
                message,
            })
        }),
        short_text().prop_map(|message| Request::RelationshipBroadcast(BroadcastData { message })),
    ]
    .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    let parsed = envelope(&text);
    // The session answers these codes; clients look them up in the catalog.
    let code = match &parsed {
        Err(NotAnEnvelope::NotJson) => Some("ROUTING_ERROR"),
        Err(NotAnEnvelope::Invalid) => Some("INVALID_MESSAGE"),
        Ok(_) => None,
    };
    if let Some(code) = code {
        prop_assert!(catalog::get(Dialect::Talo, code).is_some(), "{}", code);
    }
    let Ok((kind, data)) = parsed else {
        // INVALID_MESSAGE echoes the raw frame as `cause`; the frame it builds is JSON
        // whatever the text holds.
        let frame: Value =
            serde_json::from_str(&error_frame("unknown", "INVALID_MESSAGE", "x", Some(&text)))
                .unwrap();
        // The cause quotes the frame (cut short, if the server cuts echoes).
        let cause = frame["data"]["cause"].as_str().unwrap();
        prop_assert!(text.starts_with(cause.trim_end_matches('…')));
        prop_assert_eq!(&frame["res"], "v1.error");
        return Ok(());
    };
    prop_assert!(text != HEARTBEAT);
    if let Some(parsed) = request(kind, &data) {
        let (again_kind, again_data) = data_of(&parsed);
        prop_assert_eq!(again_kind, kind);
        prop_assert_eq!(request(kind, &again_data), Some(parsed.clone()));
        prop_assert_eq!(
            envelope(&encode(&parsed))
                .ok()
                .and_then(|(k, d)| request(k, &d)),
            Some(parsed)
        );
    }
    Ok(())
}

/// Node's base64 decoder, which the verifier follows: either alphabet, padded or not.
fn base64_any(text: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// A signed frame verifies once, at its time, for its player; a replay, a frame too far from
/// now, another key and any change to the JSON are refused. A change to the signature line is
/// refused unless it decodes to the same MAC (the verifier, like Node, reads either base64
/// alphabet), which leaves what was signed unchanged.
#[allow(clippy::type_complexity)]
fn check_signature(
    (json, key, rid, timestamp, alias, position, byte): (
        String,
        String,
        String,
        u64,
        u64,
        usize,
        u8,
    ),
) -> Result<(), TestCaseError> {
    let keys = BTreeMap::from([("v1".to_owned(), key.clone())]);
    let line = sign("v1", &key, &rid, &json, timestamp);
    let frame = format!("{line}\n{json}");
    prop_assert_eq!(split(&frame), (Some(line.as_str()), json.as_str()));
    // The frame the session reads after the line is the request, as without signatures.
    prop_assert_eq!(envelope(&json).is_ok(), envelope(split(&frame).1).is_ok());
    let mut replay = Replay::default();
    prop_assert!(replay.verify(&keys, alias, &line, &json, timestamp));
    prop_assert!(
        !replay.verify(&keys, alias, &line, &json, timestamp),
        "a replay"
    );
    let late = timestamp.saturating_add(300_001);
    prop_assert!(!Replay::default().verify(&keys, alias, &line, &json, late));
    let other = BTreeMap::from([("v1".to_owned(), format!("{key}x"))]);
    prop_assert!(!Replay::default().verify(&other, alias, &line, &json, timestamp));
    // One byte of the JSON changed.
    let mut changed = json.clone().into_bytes();
    if !changed.is_empty() {
        let at = position % changed.len();
        changed[at] = if changed[at] == byte % 128 {
            (byte % 128) ^ 1
        } else {
            byte % 128
        };
        // A broken character reads as U+FFFD: still a change.
        let changed = String::from_utf8_lossy(&changed).into_owned();
        prop_assert_ne!(&changed, &json);
        prop_assert!(!Replay::default().verify(&keys, alias, &line, &changed, timestamp));
    }
    // One byte of the signature line changed.
    let mut mutated = line.clone().into_bytes();
    let at = position % mutated.len();
    mutated[at] = if mutated[at] == byte % 128 {
        (byte % 128) ^ 1
    } else {
        byte % 128
    };
    let mutated = String::from_utf8(mutated).unwrap();
    if Replay::default().verify(&keys, alias, &mutated, &json, timestamp) {
        let (head, mac) = line.rsplit_once('.').unwrap();
        let (mutated_head, mutated_mac) = mutated.rsplit_once('.').unwrap();
        prop_assert_eq!(head, mutated_head, "{} verifies", mutated);
        prop_assert_eq!(
            base64_any(mac),
            base64_any(mutated_mac),
            "{} verifies",
            mutated
        );
    }
    Ok(())
}

fn run(cases: u32) {
    let valid = well_formed().prop_map(|r| encode(&r)).boxed();
    fuzz("talo envelope+request", cases, inputs(valid), check);
    fuzz("talo well-formed requests", cases / 4, well_formed(), |r| {
        prop_assert_eq!(
            envelope(&encode(&r)).ok().and_then(|(k, d)| request(k, &d)),
            Some(r)
        );
        Ok(())
    });
    let signed = (
        prop_oneof![3 => well_formed().prop_map(|r| encode(&r)), 1 => ".{0,40}"],
        "[ -~]{1,24}",
        "[a-z0-9-]{0,36}",
        0u64..4_000_000_000_000,
        any::<u64>(),
        any::<usize>(),
        any::<u8>(),
    );
    fuzz("talo signed frames", cases / 4, signed, check_signature);
}

runs!();
