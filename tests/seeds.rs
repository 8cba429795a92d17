//! The five seed documents are the contract: every code they name must be in the catalog and
//! decode to itself, and every example they show must decode. These tests read the documents
//! themselves (`../shared/seeds`, or `RELAYDECK_SEEDS_DIR`), so a code added to a document
//! fails here until the catalog has it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use regex::Regex;
use relaydeck::catalog::decode::decode;
use relaydeck::catalog::{self, seeds, Delivery, Dialect, Retry};

fn seed(name: &str) -> String {
    let dir = std::env::var_os("RELAYDECK_SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds"));
    let path = dir.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read seed {}: {e}; the seeds are expected in ../shared/seeds beside the repository (or set RELAYDECK_SEEDS_DIR)",
            path.display()
        )
    })
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

/// Every `{ … }` block of a document that parses as JSON (multi-line ones included).
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let bytes = text.as_bytes();
    let mut start = None;
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        let block = &text[s..=i];
                        if serde_json::from_str::<serde_json::Value>(block).is_ok() {
                            blocks.push(block.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn signal_fish_every_code_in_the_seed() {
    let text = seed(seeds::SIGNAL_FISH);
    let code_line = Regex::new(r"(?m)^([A-Z][A-Z0-9_]{3,}) [A-Z]").unwrap();
    let codes: Vec<&str> = code_line
        .captures_iter(&text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
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
    for example in json_blocks(&text) {
        let value: serde_json::Value = serde_json::from_str(&example).unwrap();
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
    let text = seed(seeds::TALO_SOCKET);
    let code_field = Regex::new(r#""errorCode":\s*"([A-Z_]+)""#).unwrap();
    let codes: Vec<&str> = code_field
        .captures_iter(&text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(codes.len(), 8, "the seed documents eight codes");
    let examples = json_blocks(&text);
    assert_eq!(examples.len(), codes.len(), "one example frame per code");
    for (example, code) in examples.iter().zip(&codes) {
        assert_decodes_to(example, Dialect::Talo, code);
        let decoding = decode(example, None).unwrap();
        let value: serde_json::Value = serde_json::from_str(example).unwrap();
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
    let text = seed(seeds::TALO_HTTP);
    let status_line = Regex::new(r"(?m)^(\d{3}) [A-Z]").unwrap();
    let statuses: Vec<&str> = status_line
        .captures_iter(&text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    for status in ["400", "401", "403", "429"] {
        assert!(statuses.contains(&status), "the seed names {status}");
    }
    for status in &statuses {
        let entries = catalog::of_dialect(Dialect::TaloHttp)
            .filter(|e| e.status.map(|s| s.to_string()).as_deref() == Some(*status))
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

    let session = Regex::new(r"(?m)^(401 Authorized - \{.*errorCode: '([A-Z_]+)' \})").unwrap();
    let mut seen = 0;
    for captures in session.captures_iter(&text) {
        seen += 1;
        let line = captures.get(1).unwrap().as_str();
        let code = captures.get(2).unwrap().as_str();
        assert_decodes_to(line, Dialect::TaloHttp, code);
    }
    assert_eq!(seen, 2, "MISSING_SESSION and INVALID_SESSION");
}

#[test]
fn flow_every_message_family_in_the_seed() {
    let text = seed(seeds::FLOW);
    let row = Regex::new(r#"(?m)^\| \*"([^"]+)"\* \|(.*)$"#).unwrap();
    let status_in_row = Regex::new(r"\b(400|404|429|500)\b").unwrap();
    let mut families = 0;
    for captures in row.captures_iter(&text) {
        families += 1;
        let message = captures
            .get(1)
            .unwrap()
            .as_str()
            .replace("...", "unexpected end of JSON input");
        // Rows of the "Message Format Errors" table give their status in the section heading.
        let status: u16 = status_in_row
            .captures(captures.get(2).unwrap().as_str())
            .map(|c| c[1].parse().unwrap())
            .unwrap_or(400);
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
    let text = seed(seeds::PUBSUB);
    let row = Regex::new(r"(?m)^([a-z][a-z_]+) \| ").unwrap();
    let codes: Vec<&str> = row
        .captures_iter(&text)
        .map(|c| c.get(1).unwrap().as_str())
        .filter(|code| *code != "code")
        .collect();
    assert_eq!(codes.len(), 13, "the seed's table has thirteen codes");
    for code in &codes {
        let frame =
            format!(r#"{{"type":"error","requestId":"r-1","code":"{code}","message":"x"}}"#);
        assert_decodes_to(&frame, Dialect::Pubsub, code);
        assert_eq!(decode(&frame, None).unwrap().fields["requestId"], "r-1");
    }
    let close = Regex::new(r"(\d{4}) ([a-z_]+)").unwrap();
    let mut closes = 0;
    for captures in close.captures_iter(&text) {
        closes += 1;
        let code = captures.get(1).unwrap().as_str();
        let reason = captures.get(2).unwrap().as_str();
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
    let examples = json_blocks(&text);
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
