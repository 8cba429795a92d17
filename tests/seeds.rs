//! The five seed documents are the contract: every code they name must be in the catalog and
//! decode to itself, and every example they show must decode. The codes, statuses and example
//! frames of each document live in `tests/data/seed-codes/` (extracted by
//! `examples/seed_data.rs`, which `.ci/run` also uses to confirm they still match the documents
//! when those are present), so a fresh clone runs these tests with nothing beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use relaydeck::catalog::decode::decode;
use relaydeck::catalog::{self, seeds, Delivery, Dialect, Retry};
use serde_json::Value;

/// What `examples/seed_data.rs` extracted from the seed document `name`.
fn seed(name: &str) -> Value {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/seed-codes")
        .join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let data: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data["seed"], name, "{} names its seed", path.display());
    data
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Decodes `input` (with the dialect as a hint) and checks the best entry.
fn assert_decodes_to(input: &str, dialect: Dialect, code: &str) {
    let decoding = decode(input, Some(dialect))
        .unwrap_or_else(|e| panic!("{input:?} does not decode as {dialect}: {e}"));
    let best = decoding
        .best()
        .unwrap_or_else(|| panic!("{input:?}: no entry"));
    assert_eq!(
        (best.dialect, best.code),
        (dialect, code),
        "{input:?} decodes to the wrong entry"
    );
}

#[test]
fn signal_fish_every_code_in_the_seed() {
    let data = seed(seeds::SIGNAL_FISH);
    let codes = strings(&data["codes"]);
    assert!(
        codes.len() >= 40,
        "found only {} codes in the seed",
        codes.len()
    );
    for code in &codes {
        for carrier in catalog::get(Dialect::SignalFish, code)
            .unwrap_or_else(|| panic!("{code} is missing from the catalog"))
            .carriers
        {
            let text_field = match *carrier {
                "Error" => "message",
                "AuthenticationError" => "error",
                _ => "reason",
            };
            let extra = if *carrier == "AuthorityResponse" {
                r#""granted":false,"#
            } else {
                ""
            };
            let frame = format!(
                r#"{{"type":"{carrier}","data":{{{extra}"{text_field}":"x","error_code":"{code}"}}}}"#
            );
            assert_decodes_to(&frame, Dialect::SignalFish, code);
        }
        assert_decodes_to(code, Dialect::SignalFish, code);
    }
    // Codes the real server sends beyond its error page.
    for extra in ["GAME_START_NOT_READY", "KICKED"] {
        assert_decodes_to(extra, Dialect::SignalFish, extra);
    }
    for example in strings(&data["examples"]) {
        let value: Value = serde_json::from_str(&example).unwrap();
        let code = value["data"]["error_code"].as_str().unwrap();
        assert_decodes_to(&example, Dialect::SignalFish, code);
    }
}

#[test]
fn signal_fish_retry_policies_follow_the_seed() {
    for (code, retry) in [
        ("RATE_LIMIT_EXCEEDED", Retry::Backoff),
        ("RECONNECTION_EXPIRED", Retry::Rejoin),
        ("ROOM_FULL", Retry::AfterStateChange),
        ("INTERNAL_ERROR", Retry::Backoff),
        ("SERVICE_UNAVAILABLE", Retry::Backoff),
    ] {
        assert_eq!(
            catalog::get(Dialect::SignalFish, code).unwrap().retry,
            retry,
            "{code}"
        );
    }
}

#[test]
fn signal_fish_close_codes() {
    for code in ["4000", "4001", "4002", "4003", "4006", "4007"] {
        let entry = catalog::get(Dialect::SignalFish, code).unwrap_or_else(|| panic!("{code}"));
        assert_eq!(entry.delivery, Delivery::Close);
        assert_decodes_to(&format!("close {code}"), Dialect::SignalFish, code);
    }
}

#[test]
fn talo_socket_every_code_and_example_in_the_seed() {
    let data = seed(seeds::TALO_SOCKET);
    let codes = strings(&data["codes"]);
    assert_eq!(codes.len(), 8, "the seed documents eight codes");
    let examples = strings(&data["examples"]);
    assert_eq!(examples.len(), codes.len(), "one example frame per code");
    for (example, code) in examples.iter().zip(&codes) {
        assert_decodes_to(example, Dialect::Talo, code);
        let decoding = decode(example, None).unwrap();
        let value: Value = serde_json::from_str(example).unwrap();
        assert_eq!(
            decoding.fields["req"], value["data"]["req"],
            "{code}: req is correlated"
        );
        if let Some(cause) = value["data"].get("cause") {
            assert_eq!(
                &decoding.fields["cause"], cause,
                "{code}: cause is correlated"
            );
        }
    }
    for code in ["UNHANDLED_REQUEST", "ROUTING_ERROR", "INVALID_SIGNATURE"] {
        assert_decodes_to(code, Dialect::Talo, code);
    }
    assert_decodes_to("close 3000", Dialect::Talo, "3000");
    assert_decodes_to("1008 RATE_LIMIT_EXCEEDED", Dialect::Talo, "1008");
    // "After 3 warnings, the connection will be closed": the policy waits for the window.
    assert_eq!(
        catalog::get(Dialect::Talo, "RATE_LIMIT_EXCEEDED")
            .unwrap()
            .retry,
        Retry::AfterWindow
    );
}

#[test]
fn talo_http_every_status_and_error_code_in_the_seed() {
    let data = seed(seeds::TALO_HTTP);
    let statuses = strings(&data["statuses"]);
    for status in ["400", "401", "403", "429"] {
        assert!(
            statuses.iter().any(|s| s == status),
            "the seed names {status}"
        );
    }
    for status in &statuses {
        let entries = catalog::of_dialect(Dialect::TaloHttp)
            .filter(|e| e.status.map(|s| s.to_string()).as_ref() == Some(status))
            .count();
        assert!(entries > 0, "HTTP {status} is missing from the catalog");
    }
    assert_decodes_to("401 Unauthorized", Dialect::TaloHttp, "401");
    assert_decodes_to(
        "403 Forbidden - { message: 'Missing access key scope(s): [scopes]' }",
        Dialect::TaloHttp,
        "403",
    );
    assert_decodes_to("400 Bad Request\n\n{\"errors\":{\"events\":[\"events is missing from the request body\"]}}", Dialect::TaloHttp, "400");
    let limited = decode("429 Too Many Requests\nRetry-After: 60", None).unwrap();
    assert_eq!(limited.best().unwrap().code, "429");
    assert_eq!(limited.fields["Retry-After"], "60");
    assert_eq!(limited.best().unwrap().retry, Retry::AfterWindow);

    let mut seen = 0;
    for session in data["session_lines"].as_array().unwrap() {
        seen += 1;
        let line = session["line"].as_str().unwrap();
        let code = session["code"].as_str().unwrap();
        assert_decodes_to(line, Dialect::TaloHttp, code);
    }
    assert_eq!(seen, 2, "MISSING_SESSION and INVALID_SESSION");
}

#[test]
fn flow_every_message_family_in_the_seed() {
    let data = seed(seeds::FLOW);
    let mut families = 0;
    for row in data["messages"].as_array().unwrap() {
        families += 1;
        let message = row["message"]
            .as_str()
            .unwrap()
            .replace("...", "unexpected end of JSON input");
        let status = u16::try_from(row["status"].as_u64().unwrap()).unwrap();
        let frame = serde_json::json!({
            "subscription_id": "sub1",
            "error": {"code": status, "message": message},
            "action": "subscribe",
        })
        .to_string();
        let decoding = decode(&frame, None).unwrap_or_else(|e| panic!("{message:?}: {e}"));
        let entry = decoding.best().unwrap();
        assert_eq!(entry.dialect, Dialect::Flow);
        assert!(
            message.starts_with(entry.code),
            "{message:?} decoded to {:?}",
            entry.code
        );
        assert_eq!(entry.status, Some(status), "{message:?}: status");
    }
    assert!(
        families >= 13,
        "found only {families} message rows in the seed"
    );
    // The seed's structure block names the field `subscriptionID`; the decoder accepts it.
    let decoding = decode(
        r#"{"subscriptionID":"abc","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}"#,
        None,
    )
    .unwrap();
    assert_eq!(decoding.fields["subscription_id"], "abc");
}

#[test]
fn pubsub_every_code_close_and_example_in_the_seed() {
    let data = seed(seeds::PUBSUB);
    let codes = strings(&data["codes"]);
    assert_eq!(codes.len(), 13, "the seed's table has thirteen codes");
    for code in &codes {
        let frame =
            format!(r#"{{"type":"error","requestId":"r-1","code":"{code}","message":"x"}}"#);
        assert_decodes_to(&frame, Dialect::Pubsub, code);
        assert_eq!(decode(&frame, None).unwrap().fields["requestId"], "r-1");
    }
    let mut closes = 0;
    for close in data["closes"].as_array().unwrap() {
        closes += 1;
        let code = close["code"].as_str().unwrap();
        let reason = close["reason"].as_str().unwrap();
        assert_decodes_to(&format!("close {code} {reason}"), Dialect::Pubsub, code);
        assert_eq!(
            decode(&format!("{code} {reason}"), None)
                .unwrap()
                .best()
                .unwrap()
                .dialect,
            Dialect::Pubsub
        );
    }
    assert_eq!(closes, 4, "4001, 4011, 4010 and 4020 are named in the seed");
    for code in ["4002", "4003", "4012", "1009"] {
        assert_decodes_to(&format!("close {code}"), Dialect::Pubsub, code);
    }
    let examples = strings(&data["examples"]);
    assert!(!examples.is_empty());
    for example in examples {
        assert_decodes_to(&example, Dialect::Pubsub, "channel_not_authorized");
    }
    // The seed's retry column.
    for (code, retry) in [
        ("malformed_message", Retry::Never),
        ("channel_not_authorized", Retry::NotOnThisConnection),
        ("channel_limit_exceeded", Retry::AfterStateChange),
        ("peer_not_found", Retry::Sometimes),
        ("action_not_permitted", Retry::NotOnThisConnection),
        ("over_message_quota", Retry::AfterWindow),
        ("backend_error", Retry::Backoff),
        ("internal_error", Retry::Backoff),
    ] {
        assert_eq!(
            catalog::get(Dialect::Pubsub, code).unwrap().retry,
            retry,
            "{code}"
        );
    }
}

#[test]
fn rfc_6455_close_codes_1000_to_1015() {
    for code in 1000..=1015u16 {
        let entry = catalog::get(Dialect::Websocket, &code.to_string())
            .unwrap_or_else(|| panic!("{code} is missing"));
        assert_eq!(entry.delivery, Delivery::Close);
        assert_decodes_to(&code.to_string(), Dialect::Websocket, &code.to_string());
    }
}
