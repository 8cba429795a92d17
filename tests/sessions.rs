//! The shipped sessions: every file parses and names catalog codes, every session passes
//! against a real server, and every code of the dialects the server speaks has a session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::TestServer;
use relaydeck::catalog::{self, Dialect};
use relaydeck::session::replay::{self, Outcome, Target};
use relaydeck::session::Session;

/// Codes that no session reproduces, each with the reason. None of them comes from the five
/// seed documents (the test below checks that).
const NOT_REPRODUCIBLE: &[(&str, &str)] = &[
    ("pubsub:going_away", "sent only while the server shuts down, which a session cannot trigger; tests/pubsub.rs checks it"),
    ("signal-fish:4000", "sent only while the server shuts down; tests/signal_fish.rs checks it"),
    ("signal-fish:4002", "needs a reader that stops while tens of megabytes of game data fill its socket buffers and queue, more than the rate limits of the replay config let a session send; tests/signal_fish.rs checks it with a raised limit"),
    ("signal-fish:4004", "the socket idle timeout (300 s) is longer than the activity timeout, so a silent session meets 4003 first; tests/signal_fish.rs checks 4004 with the timeouts the other way round"),
    ("signal-fish:CONNECTION_IDLE_TIMEOUT", "sent before close 4004; see signal-fish:4004"),
    ("signal-fish:SLOW_CONSUMER", "0.12 sends it best-effort before close 4002 to a client that has stopped reading, so it never arrives; relaydeck closes 4002 slow_consumer without it (see signal-fish:4002)"),
    ("signal-fish:1009", "0.12 sends it only for an outbound message over 8 MiB, which no request makes the server send; an inbound frame over 64 KiB gets MESSAGE_TOO_LARGE and the connection stays open"),
    ("signal-fish:BANNED", "relaydeck mints a player id per join and closes a banned seated player with 4007, so no later join can present the banned id; the rooms unit tests check the refusal"),
    ("signal-fish:4005", "a room is reaped after an hour of silence (upstream's default), longer than a session may run; tests/signal_fish.rs checks it with a short timeout"),
    ("signal-fish:SERVER_DRAINING", "sent only while the server shuts down, which a session cannot trigger"),
    ("websocket:1001", "sent only while the server shuts down"),
    ("websocket:1002", "the WebSocket library answers protocol violations itself, and the replay client cannot commit one"),
    ("websocket:1003", "no dialect refuses a data type with 1003; binary frames get each dialect's own code"),
    ("websocket:1004", "reserved by RFC 6455; no endpoint may send it"),
    ("websocket:1005", "never sent on the wire: it stands for a close frame that had no code"),
    ("websocket:1006", "never sent on the wire: it stands for a connection lost without a close frame"),
    ("websocket:1007", "the replay client cannot send invalid UTF-8 in a text frame"),
    ("websocket:1008", "relaydeck's only 1008 is Talo's, catalogued and reproduced as talo:1008"),
    ("websocket:1009", "each dialect closes oversized frames with its own catalogued 1009 (pubsub:1009, signal-fish:1009)"),
    ("websocket:1010", "sent by clients only, when a server declines a required extension"),
    ("websocket:1011", "relaydeck reports server faults with each dialect's own codes, never with 1011"),
    ("websocket:1012", "relaydeck never restarts in place"),
    ("websocket:1013", "sent to slow consumers of pub/sub, Talo and Flow, which a session cannot provoke deterministically"),
    ("websocket:1014", "relaydeck is not a gateway"),
    ("websocket:1015", "never sent on the wire: it stands for a failed TLS handshake, and the server speaks plain ws://"),
];

fn session_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn load_all() -> Vec<(PathBuf, Session)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sessions");
    session_files(&dir)
        .into_iter()
        .map(|path| {
            let session = Session::load(&path).unwrap_or_else(|e| panic!("{e}"));
            (path, session)
        })
        .collect()
}

#[test]
fn every_session_file_parses_and_names_catalog_codes() {
    let sessions = load_all();
    assert!(!sessions.is_empty());
    for (path, session) in &sessions {
        assert!(
            !session.header.expect_codes.is_empty(),
            "{}: expects no code",
            path.display()
        );
        for code in &session.header.expect_codes {
            let (dialect, code_part) = code.split_once(':').unwrap();
            let dialect: Dialect = dialect.parse().unwrap();
            assert!(
                catalog::get(dialect, code_part).is_some(),
                "{}: {code} is not in the catalog",
                path.display()
            );
        }
    }
}

#[test]
fn every_documented_code_has_a_reproduction() {
    let covered: BTreeSet<String> = load_all()
        .into_iter()
        .flat_map(|(_, session)| session.header.expect_codes)
        .collect();
    let exempt: BTreeSet<&str> = NOT_REPRODUCIBLE.iter().map(|(code, _)| *code).collect();
    let mut missing = Vec::new();
    for dialect in Dialect::ALL {
        let entries: Vec<_> = catalog::of_dialect(dialect).collect();
        let reproduced = entries
            .iter()
            .filter(|e| covered.contains(&e.qualified()))
            .count();
        println!(
            "{dialect}: {reproduced} of {} codes reproduced by a session",
            entries.len()
        );
        for entry in entries {
            let qualified = entry.qualified();
            if !covered.contains(&qualified) && !exempt.contains(qualified.as_str()) {
                missing.push(qualified);
            }
        }
    }
    assert!(missing.is_empty(), "codes without a session: {missing:#?}");
    for (code, _) in NOT_REPRODUCIBLE {
        assert!(
            !covered.contains(*code),
            "{code} is listed as not reproducible but has a session"
        );
        let (dialect, code_part) = code.split_once(':').unwrap();
        let entry = catalog::get(dialect.parse().unwrap(), code_part)
            .unwrap_or_else(|| panic!("{code} is not in the catalog"));
        assert!(
            !matches!(entry.source, relaydeck::catalog::Source::Seed(_)),
            "{code} comes from a seed and must be reproduced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_session_passes_against_the_server() {
    for (path, session) in load_all() {
        // A fresh server per session, as `relaydeck replay` of a single file would see it.
        let server = TestServer::start(relaydeck::server::config::Config::for_replay()).await;
        let target = Target {
            addr: server.addr.to_string(),
            admin_token: Some(server.token.clone()),
        };
        let report = replay::run(&session, &target, &mut |_| {}).await;
        let failures: Vec<String> = report
            .steps
            .iter()
            .filter(|s| !s.passed())
            .map(|s| format!("step {} {}: {:?}", s.number, s.description, s.outcome))
            .collect();
        assert!(
            report.passed(),
            "{} failed:\n{}",
            path.display(),
            failures.join("\n")
        );
        for code in &session.header.expect_codes {
            assert!(
                report.codes_seen.contains(code),
                "{}: the server never sent {code}; saw {:?}",
                path.display(),
                report.codes_seen
            );
        }
    }
}

#[tokio::test]
async fn a_mismatch_reports_what_was_expected_and_what_came() {
    let server = TestServer::demo().await;
    let session = Session::parse(
        r#"{"session":1,"name":"wrong on purpose","dialect":"pubsub","expect_codes":["pubsub:missing_data"]}
{"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
{"step":"send","conn":"a","frame":{"type":"publish","channel":"elsewhere","data":1}}
{"step":"expect","conn":"a","code":"missing_data","timeout_ms":2000}
{"step":"send","conn":"a","frame":{"type":"publish","channel":"demo/a","data":1}}"#,
        "inline",
    )
    .unwrap();
    let target = Target {
        addr: server.addr.to_string(),
        admin_token: Some(server.token.clone()),
    };
    let report = replay::run(&session, &target, &mut |_| {}).await;
    assert!(!report.passed());
    assert_eq!(report.skipped, 1, "the steps after a mismatch are not run");
    let Outcome::Mismatch { expected, received } = &report.steps[2].outcome else {
        panic!("{:?}", report.steps[2].outcome)
    };
    assert_eq!(expected, "an error missing_data");
    assert!(
        received
            .iter()
            .any(|line| line.contains("peerId") && line.contains("skipped")),
        "{received:?}"
    );
    assert!(
        received
            .last()
            .unwrap()
            .contains("pubsub:channel_not_authorized"),
        "{received:?}"
    );
}

#[test]
fn replay_exits_non_zero_on_a_mismatch_and_zero_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        r#"{"session":1,"name":"bad","dialect":"pubsub","expect_codes":["pubsub:4001"]}
{"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
{"step":"expect_close","conn":"a","code":4001,"timeout_ms":1000}
"#,
    )
    .unwrap();
    let binary = env!("CARGO_BIN_EXE_relaydeck");
    let failed = std::process::Command::new(binary)
        .arg("replay")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(
        text.contains("- expected: close 4001") && text.contains("FAIL"),
        "{text}"
    );

    let good =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sessions/pubsub/4001_invalid_token.jsonl");
    let passed = std::process::Command::new(binary)
        .arg("replay")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passed.stdout)
    );
}
