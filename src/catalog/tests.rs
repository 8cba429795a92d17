use std::collections::HashSet;

use super::*;

#[test]
fn codes_are_unique_within_a_dialect() {
    let mut seen = HashSet::new();
    for entry in all() {
        assert!(
            seen.insert((entry.dialect, entry.code)),
            "duplicate entry {}",
            entry.qualified()
        );
    }
}

#[test]
fn window_is_set_exactly_for_after_window() {
    for entry in all() {
        assert_eq!(
            entry.window.is_some(),
            entry.retry == Retry::AfterWindow,
            "{}: window and retry policy disagree",
            entry.qualified()
        );
    }
}

#[test]
fn tables_follow_dialect_order() {
    for (table, dialect) in entries::TABLES.iter().zip(Dialect::ALL) {
        for entry in table.iter() {
            assert_eq!(
                entry.dialect,
                dialect,
                "{} is in the wrong table",
                entry.qualified()
            );
        }
    }
}

#[test]
fn close_entries_have_numeric_codes_and_http_entries_a_status() {
    for entry in all() {
        match entry.delivery {
            Delivery::Close => assert!(
                entry
                    .close_code()
                    .is_some_and(|c| (1000..=4999).contains(&c)),
                "{}: close code must be 1000..=4999",
                entry.qualified()
            ),
            Delivery::Http => assert!(entry.status.is_some(), "{}: no status", entry.qualified()),
            Delivery::Frame => {}
        }
    }
}

#[test]
fn every_entry_has_text_a_person_can_act_on() {
    for entry in all() {
        assert!(!entry.title.is_empty(), "{}: title", entry.qualified());
        assert!(
            entry.meaning.ends_with('.'),
            "{}: meaning must be a sentence",
            entry.qualified()
        );
        assert!(
            entry.guidance.ends_with('.'),
            "{}: guidance must be a sentence",
            entry.qualified()
        );
        assert!(!entry.example.is_empty(), "{}: example", entry.qualified());
    }
}

/// The 62 `ErrorCode` variants of signal-fish-server 0.12 (`protocol/error_codes.rs`), in
/// declaration order.
const SIGNAL_FISH_0_12_CODES: [&str; 62] = [
    "UNAUTHORIZED",
    "INVALID_TOKEN",
    "AUTHENTICATION_REQUIRED",
    "INVALID_APP_ID",
    "APP_ID_EXPIRED",
    "APP_ID_REVOKED",
    "APP_ID_SUSPENDED",
    "MISSING_APP_ID",
    "AUTHENTICATION_TIMEOUT",
    "SDK_VERSION_UNSUPPORTED",
    "UNSUPPORTED_GAME_DATA_FORMAT",
    "INVALID_INPUT",
    "INVALID_GAME_NAME",
    "INVALID_ROOM_CODE",
    "INVALID_PLAYER_NAME",
    "INVALID_MAX_PLAYERS",
    "MESSAGE_TOO_LARGE",
    "ROOM_NOT_FOUND",
    "ROOM_FULL",
    "ALREADY_IN_ROOM",
    "NOT_IN_ROOM",
    "ROOM_CREATION_FAILED",
    "MAX_ROOMS_PER_GAME_EXCEEDED",
    "INVALID_ROOM_STATE",
    "AUTHORITY_NOT_SUPPORTED",
    "AUTHORITY_CONFLICT",
    "AUTHORITY_DENIED",
    "RATE_LIMIT_EXCEEDED",
    "TOO_MANY_CONNECTIONS",
    "RECONNECTION_FAILED",
    "RECONNECTION_TOKEN_INVALID",
    "RECONNECTION_EXPIRED",
    "PLAYER_ALREADY_CONNECTED",
    "SPECTATOR_NOT_ALLOWED",
    "TOO_MANY_SPECTATORS",
    "NOT_A_SPECTATOR",
    "SPECTATOR_JOIN_FAILED",
    "INTERNAL_ERROR",
    "STORAGE_ERROR",
    "SERVICE_UNAVAILABLE",
    "CROSS_ROOM_SIGNAL",
    "UNSUPPORTED_TRANSPORT",
    "SIGNAL_TARGET_NOT_FOUND",
    "SIGNAL_RATE_LIMITED",
    "SIGNAL_TOO_LARGE",
    "CONNECTION_IDLE_TIMEOUT",
    "GAME_START_NOT_READY",
    "GAME_START_FORBIDDEN",
    "ROOM_SESSION_INCOMPATIBLE",
    "SLOW_CONSUMER",
    "ACTIVITY_TIMEOUT",
    "SERVER_DRAINING",
    "INVALID_DELIVERY_CLASS",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "NOT_ROOM_AUTHORITY",
    "KICK_TARGET_NOT_FOUND",
    "KICKED",
    "PASSWORD_REQUIRED",
    "BANNED",
    "TRANSFER_TARGET_NOT_FOUND",
    "CONNECT_TOKEN_INVALID",
    "CONNECT_TOKEN_REQUIRED",
];

#[test]
fn every_signal_fish_0_12_code_is_catalogued_with_its_source() {
    let mut from_seed = 0;
    for code in SIGNAL_FISH_0_12_CODES {
        let entry = get(Dialect::SignalFish, code).unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(entry.delivery, Delivery::Frame, "{code}");
        match entry.source {
            Source::Seed(seed) => {
                assert_eq!(seed, seeds::SIGNAL_FISH, "{code}");
                from_seed += 1;
            }
            Source::Upstream(origin) => {
                assert!(
                    origin.contains("signal-fish-server 0.12"),
                    "{code}: {origin}"
                )
            }
            Source::Rfc6455 => panic!("{code}: not an RFC 6455 code"),
        }
        let decoded = super::decode::decode(entry.example, Some(Dialect::SignalFish))
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(decoded.code.as_deref(), Some(code), "{code}");
    }
    assert_eq!(from_seed, 40, "the seed page lists 40 of the 62");
    // Nothing beyond upstream's set is invented as a frame code.
    let frames = of_dialect(Dialect::SignalFish)
        .filter(|e| e.delivery == Delivery::Frame)
        .count();
    assert_eq!(frames, SIGNAL_FISH_0_12_CODES.len());
}

#[test]
fn signal_fish_close_reasons_are_spelled_as_upstream() {
    for (code, reason) in [
        (4000, "server_shutdown"),
        (4001, "auth_timeout"),
        (4002, "slow_consumer"),
        (4003, "activity_timeout"),
        (4004, "idle_timeout"),
        (4005, "room_inactive"),
        (4006, "inbound_rate_limited"),
        (4007, "kicked"),
        (1009, "outbound_message_too_large"),
    ] {
        let entry = close(Dialect::SignalFish, code).unwrap_or_else(|| panic!("{code}"));
        assert_eq!(entry.wire_text, reason, "{code}");
        let decoded = super::decode::decode(&format!("close {code} {reason}"), None).unwrap();
        assert_eq!(
            decoded.dialect,
            Some(Dialect::SignalFish),
            "{code} {reason}"
        );
    }
}

#[test]
fn automated_retries_slow_down_and_stop_where_the_policy_says() {
    use std::time::Duration;
    // A refusal that needs a person waits longer each time, up to a minute.
    let waits: Vec<_> = (1..=6)
        .map(|n| Retry::NotOnThisConnection.wait_before_retry(n, None))
        .collect();
    assert_eq!(waits[0], Some(Duration::from_secs(5)));
    assert_eq!(waits[1], Some(Duration::from_secs(10)));
    assert_eq!(waits[5], Some(Duration::from_secs(60)));
    assert_eq!(Retry::Never.wait_before_retry(1, None), None);
    // A stated window is honoured; none falls back to doubling.
    assert_eq!(
        Retry::AfterWindow.wait_before_retry(3, Some(Duration::from_millis(1500))),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        Retry::AfterWindow.wait_before_retry(3, None),
        Some(Duration::from_secs(4))
    );
    // However many refusals, no overflow and no wait beyond the cap.
    assert_eq!(
        Retry::Backoff.wait_before_retry(u32::MAX, None),
        Some(Duration::from_secs(30))
    );
    // Every policy but `never` lets a client try again by itself.
    for retry in Retry::ALL {
        assert_eq!(
            retry.wait_before_retry(1, None).is_none(),
            retry == Retry::Never,
            "{retry}"
        );
    }
}
