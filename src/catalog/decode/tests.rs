use proptest::prelude::*;

use super::*;
use crate::catalog::{self, Retry};

fn best(input: &str) -> &'static Entry {
    decode(input, None)
        .unwrap_or_else(|e| panic!("{input:?} did not decode: {e}"))
        .best()
        .unwrap_or_else(|| panic!("{input:?} decoded to no entry"))
}

#[test]
fn every_entry_example_decodes_back_to_its_entry() {
    for entry in catalog::all() {
        let decoding = decode(entry.example, Some(entry.dialect)).unwrap_or_else(|e| {
            panic!(
                "{}: example {:?} fails: {e}",
                entry.qualified(),
                entry.example
            )
        });
        assert_eq!(
            decoding.best().map(|e| e.qualified()),
            Some(entry.qualified()),
            "example {:?}",
            entry.example
        );
        // Without the hint, the entry is still among the candidates.
        let unhinted = decode(entry.example, None).unwrap();
        assert!(
            unhinted
                .candidates
                .iter()
                .any(|c| c.qualified() == entry.qualified()),
            "{}: not a candidate without --dialect",
            entry.qualified()
        );
    }
}

#[test]
fn close_inputs_in_every_spelling() {
    for (input, code, reason) in [
        ("4020", "4020", None),
        (
            "close 4020 admin_disconnect",
            "4020",
            Some("admin_disconnect"),
        ),
        (
            "1008 RATE_LIMIT_EXCEEDED",
            "1008",
            Some("RATE_LIMIT_EXCEEDED"),
        ),
        (
            "CLOSED code=1000 reason='unregistered'",
            "1000",
            Some("unregistered"),
        ),
        (
            "close: 4011 (over_message_rate)",
            "4011",
            Some("over_message_rate"),
        ),
        (
            "code=4001 reason=invalid_token",
            "4001",
            Some("invalid_token"),
        ),
        ("WebSocket closed 1006", "1006", None),
    ] {
        let decoding = decode(input, None).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(decoding.kind, InputKind::Close, "{input}");
        assert_eq!(decoding.code.as_deref(), Some(code), "{input}");
        assert_eq!(
            decoding.fields.get("reason").and_then(Value::as_str),
            reason,
            "{input}"
        );
    }
}

#[test]
fn shared_close_numbers_list_every_candidate_and_the_reason_picks_the_first() {
    let decoding = decode("4001", None).unwrap();
    let dialects: Vec<Dialect> = decoding.candidates.iter().map(|e| e.dialect).collect();
    assert!(dialects.contains(&Dialect::SignalFish) && dialects.contains(&Dialect::Pubsub));

    assert_eq!(best("close 4001 invalid_token").dialect, Dialect::Pubsub);
    assert_eq!(best("1008 RATE_LIMIT_EXCEEDED").dialect, Dialect::Talo);
    assert_eq!(best("1008").dialect, Dialect::Websocket);

    let narrowed = decode("4001", Some(Dialect::SignalFish)).unwrap();
    assert_eq!(narrowed.candidates.len(), 1);
    assert_eq!(narrowed.dialect, Some(Dialect::SignalFish));
}

#[test]
fn a_dialect_without_its_own_close_meaning_falls_back_to_rfc_6455() {
    let decoding = decode("close 1000", Some(Dialect::Pubsub)).unwrap();
    assert_eq!(decoding.best().map(|e| e.dialect), Some(Dialect::Websocket));
}

#[test]
fn narrowing_to_a_dialect_that_lacks_the_code_says_where_it_is_known() {
    let error = decode("ROOM_FULL", Some(Dialect::Pubsub)).unwrap_err();
    assert!(
        matches!(&error, DecodeError::NotInDialect { known_in, .. } if known_in.contains(&"signal-fish:ROOM_FULL".to_owned())),
        "{error:?}"
    );
}

#[test]
fn http_statuses_with_headers_and_bodies() {
    let decoding = decode("429 Retry-After: 60", None).unwrap();
    assert_eq!(
        decoding.best().map(|e| e.qualified()).as_deref(),
        Some("talo-http:429")
    );
    assert_eq!(decoding.fields["Retry-After"], "60");
    assert_eq!(decoding.best().map(|e| e.retry), Some(Retry::AfterWindow));

    let raw = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 42\r\nContent-Type: application/json\r\n\r\n{}";
    assert_eq!(decode(raw, None).unwrap().fields["Retry-After"], "42");

    let session =
        r#"401 {"message":"The x-talo-session header is invalid","errorCode":"INVALID_SESSION"}"#;
    assert_eq!(best(session).code, "INVALID_SESSION");

    // The notation of Talo's own documentation, not strict JSON.
    let scopes = "403 Forbidden - { message: 'Missing access key scope(s): [scopes]' }";
    assert_eq!(best(scopes).code, "403");
    let missing = "401 Authorized - { message: 'The x-talo-session header is required for this player', errorCode: 'MISSING_SESSION' }";
    assert_eq!(best(missing).code, "MISSING_SESSION");

    assert_eq!(best("401 Unauthorized").code, "401");
    assert_eq!(best("400").code, "400");
}

#[test]
fn talo_http_bodies_alone() {
    assert_eq!(
        best(r#"{"errors":{"events":["events is missing from the request body"]}}"#).code,
        "400"
    );
    assert_eq!(
        best(r#"{"message":"Missing access key scope(s): read:players"}"#).code,
        "403"
    );
    assert_eq!(
        best(r#"{"message":"The x-talo-session header is required for this player","errorCode":"MISSING_SESSION"}"#).code,
        "MISSING_SESSION"
    );
}

#[test]
fn an_unknown_http_status_is_refused_with_a_reason() {
    let error = decode("418", None).unwrap_err();
    assert!(error.to_string().contains("418"), "{error}");
}

#[test]
fn correlating_fields_are_returned() {
    let pubsub = decode(
        r#"{"type":"error","requestId":"pub-2","code":"channel_not_authorized","message":"not authorized: other-app/room-1"}"#,
        None,
    )
    .unwrap();
    assert_eq!(pubsub.fields["requestId"], "pub-2");

    let flow = decode(
        r#"{"subscriptionID":"s9","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}"#,
        None,
    )
    .unwrap();
    assert_eq!(flow.fields["subscription_id"], "s9");
    assert_eq!(flow.fields["action"], "unsubscribe");
    assert_eq!(flow.best().map(|e| e.status), Some(Some(404)));

    let talo = decode(
        r#"{"res":"v1.error","data":{"req":"v1.channels.message","message":"An error occurred while processing the message","errorCode":"LISTENER_ERROR","cause":"Player not in channel"}}"#,
        None,
    )
    .unwrap();
    assert_eq!(talo.fields["req"], "v1.channels.message");
    assert_eq!(talo.fields["cause"], "Player not in channel");
}

#[test]
fn the_longest_flow_family_wins() {
    let decoding = decode(
        r#"{"subscription_id":"a","error":{"code":429,"message":"error creating new subscription: maximum number of subscriptions reached"},"action":"subscribe"}"#,
        None,
    )
    .unwrap();
    assert_eq!(decoding.best().map(|e| e.status), Some(Some(429)));
}

#[test]
fn frames_that_are_not_errors_are_recognised_as_such() {
    for (input, dialect) in [
        (r#"{"res":"v1.connected","data":{}}"#, Dialect::Talo),
        (r#"{"req":"v1.players.identify","data":{}}"#, Dialect::Talo),
        (r#"{"type":"Pong"}"#, Dialect::SignalFish),
        (
            r#"{"type":"AuthorityResponse","data":{"granted":true,"reason":null}}"#,
            Dialect::SignalFish,
        ),
        (r#"{"type":"welcome","peerId":"p1"}"#, Dialect::Pubsub),
        (r#"{"type":"ack","requestId":"r1"}"#, Dialect::Pubsub),
        (
            r#"{"subscription_id":"s1","action":"subscribe"}"#,
            Dialect::Flow,
        ),
        (
            r#"{"subscriptions":[],"action":"list_subscriptions"}"#,
            Dialect::Flow,
        ),
        (
            r#"{"subscription_id":"s1","topic":"rooms","payload":{}}"#,
            Dialect::Flow,
        ),
    ] {
        let decoding = decode(input, None).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert!(
            decoding.not_an_error.is_some(),
            "{input} should not be an error"
        );
        assert!(decoding.candidates.is_empty(), "{input}");
        assert_eq!(decoding.dialect, Some(dialect), "{input}");
    }
}

#[test]
fn a_log_prefix_before_the_frame_is_ignored() {
    let line = r#"[C] << {"type":"RoomJoinFailed","data":{"reason":"Room is full","error_code":"ROOM_FULL"}}"#;
    assert_eq!(best(line).code, "ROOM_FULL");
}

#[test]
fn signal_fish_frames_without_error_code_are_matched_by_their_text() {
    let decoding = decode(
        r#"{"type":"RoomJoinFailed","data":{"reason":"Room is full"}}"#,
        None,
    );
    assert_eq!(decoding.unwrap().best().map(|e| e.code), Some("ROOM_FULL"));
}

#[test]
fn code_names_bare_and_qualified() {
    assert_eq!(best("ROOM_FULL").dialect, Dialect::SignalFish);
    assert_eq!(best("pubsub:4020").code, "4020");
    assert_eq!(best("subscription_not_found").dialect, Dialect::Flow);
    let shared = decode("RATE_LIMIT_EXCEEDED", None).unwrap();
    let dialects: Vec<Dialect> = shared.candidates.iter().map(|e| e.dialect).collect();
    assert!(dialects.contains(&Dialect::SignalFish) && dialects.contains(&Dialect::Talo));
}

#[test]
fn unknown_codes_in_known_shapes_are_errors_that_name_the_code() {
    let error = decode(
        r#"{"type":"Error","data":{"message":"x","error_code":"NOT_A_CODE"}}"#,
        None,
    )
    .unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnknownCode {
            dialect: Dialect::SignalFish,
            code: "NOT_A_CODE".to_owned(),
            hint: None
        }
    );
}

#[test]
fn garbage_is_refused_with_a_helpful_message() {
    for input in [
        "",
        "   ",
        "hello world",
        "[1,2,3]",
        "{\"a\":1}",
        "99999",
        "12",
        "{not json",
    ] {
        let error = decode(input, None).unwrap_err();
        assert!(!error.to_string().is_empty(), "{input}");
    }
}

#[test]
fn deeply_nested_input_is_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(decode(&deep, None).is_err());
    let deep5 = format!("{}{}", "{a:".repeat(10_000), "}".repeat(10_000));
    assert!(decode(&deep5, None).is_err());
}

#[test]
fn oversized_input_is_refused() {
    let huge = format!(
        "{{\"type\":\"error\",\"code\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(MAX_INPUT_BYTES)
    );
    assert!(matches!(
        decode(&huge, None),
        Err(DecodeError::Unrecognised(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(input in ".{0,400}") {
        let _ = decode(&input, None);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&String::from_utf8_lossy(&bytes), None);
    }

    #[test]
    fn truncated_examples_never_panic(index in 0usize..512, cut in 0usize..400) {
        let entries: Vec<&Entry> = catalog::all().collect();
        prop_assume!(!entries.is_empty());
        let example = entries[index % entries.len()].example;
        let mut end = cut.min(example.len());
        while !example.is_char_boundary(end) {
            end -= 1;
        }
        let _ = decode(&example[..end], None);
        let _ = decode(&example[end..], Some(Dialect::Flow));
    }

    #[test]
    fn structured_noise_never_panics(
        head in prop_oneof![Just("close "), Just("HTTP/1.1 "), Just(""), Just("{"), Just("[X] << {")],
        number in 0u32..70000,
        tail in "[ -~\n]{0,80}",
    ) {
        let _ = decode(&format!("{head}{number}{tail}"), None);
    }
}

#[test]
fn correlated_operation_refusals_decode_to_their_code_with_the_operation_id() {
    for (result, code) in [
        ("RoomJoinFailed", "ROOM_FULL"),
        ("ReconnectionFailed", "RECONNECTION_TOKEN_INVALID"),
        ("SpectatorJoinFailed", "SPECTATOR_NOT_ALLOWED"),
        ("OperationFailed", "NOT_IN_ROOM"),
    ] {
        let frame = format!(
            r#"{{"type":"RoomOperationResult","data":{{"operation_id":"6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234","result":{{"type":"{result}","data":{{"reason":"x","error_code":"{code}"}}}}}}}}"#
        );
        let decoding = decode(&frame, None).unwrap();
        assert_eq!(decoding.best().map(|e| e.code), Some(code), "{result}");
        assert_eq!(
            decoding.fields["operation_id"],
            "6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234"
        );
    }
    // A correlated success is not an error.
    let joined = decode(
        r#"{"type":"RoomOperationResult","data":{"operation_id":"6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234","result":{"type":"RoomLeft"}}}"#,
        None,
    )
    .unwrap();
    assert!(joined.best().is_none());
}
