//! The command line as a person uses it: the real binary, its output and exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn relaydeck(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn decode_json_gives_dialect_code_and_retry_for_frames_closes_and_statuses() {
    let (status, out) = relaydeck(&[
        "decode",
        "--json",
        r#"{"res":"v1.error","data":{"req":"v1.players.identify","message":"Invalid socket token","errorCode":"INVALID_SOCKET_TOKEN"}}"#,
        r#"{"type":"RoomJoinFailed","data":{"reason":"Room is full","error_code":"ROOM_FULL"}}"#,
        r#"{"subscription_id":"s1","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}"#,
        r#"{"type":"error","requestId":"pub-2","code":"channel_not_authorized","message":"not authorized: other-app/room-1"}"#,
        "close 4020 admin_disconnect",
        "429 Retry-After: 60",
    ]);
    assert_eq!(status, 0, "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["dialect"].as_str().unwrap().to_owned(),
                v["code"].as_str().unwrap().to_owned(),
                v["retry"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("talo", "INVALID_SOCKET_TOKEN", "reauthenticate"),
        ("signal-fish", "ROOM_FULL", "after-state-change"),
        ("flow", "subscription not found", "never"),
        ("pubsub", "channel_not_authorized", "not-on-this-connection"),
        ("pubsub", "4020", "sometimes"),
        ("talo-http", "429", "after-window"),
    ];
    for ((dialect, code, retry), got) in expected.iter().zip(&summary) {
        assert_eq!(
            (dialect.to_string(), code.to_string(), retry.to_string()),
            *got
        );
    }
    assert_eq!(lines[3]["fields"]["requestId"], "pub-2");
    assert_eq!(lines[5]["fields"]["Retry-After"], "60");
    for line in &lines {
        for key in [
            "input",
            "dialect",
            "code",
            "delivery",
            "category",
            "retry",
            "meaning",
            "guidance",
            "fields",
            "candidates",
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
}

#[test]
fn undecodable_input_exits_1_with_a_sentence_and_stdin_takes_one_input_per_line() {
    let (status, out) = relaydeck(&["decode", "this is not a frame"]);
    assert_eq!(status, 1);
    assert!(out.contains("cannot decode"), "{out}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["decode", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"4001\n\nROOM_FULL\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["candidates"].as_array().unwrap().len() >= 2,
        "4001 is used by several dialects"
    );
}

#[test]
fn codes_lists_every_entry_and_explain_prints_one() {
    let (status, out) = relaydeck(&["codes"]);
    assert_eq!(status, 0);
    assert_eq!(out.lines().count(), relaydeck::catalog::all().count());
    let (status, out) = relaydeck(&["explain", "pubsub:4020"]);
    assert_eq!(status, 0);
    assert!(
        out.contains("admin_disconnect") && out.contains("Example"),
        "{out}"
    );
    let (status, _) = relaydeck(&["explain", "NOT_A_REAL_CODE"]);
    assert_eq!(status, 1);
}

/// A player's pasted log, from stdin: a timeline of its errors and closes with timestamps and
/// correlation fields; a log without any exits non-zero.
#[test]
fn decode_timeline_reads_a_pasted_log() {
    let run = |log: &str, json: bool| {
        let mut args = vec!["decode", "--timeline", "-"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(log.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let log = "[14:01:58.200] <- {\"type\":\"Authenticated\",\"data\":{\"app_name\":\"Demo\"}}\n\
               14:02:03 pub <- {\"type\":\"error\",\"requestId\":\"p-9\",\"code\":\"channel_not_authorized\",\"message\":\"not authorized: x\"}\n\
               14:02:11.5 WebSocket closed: CLOSED code=4020 reason='admin_disconnect'\n";
    let (status, out) = run(log, true);
    assert_eq!(status, 0, "{out}");
    let timeline: Value = serde_json::from_str(&out).unwrap();
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{out}");
    assert_eq!(events[0]["line"], 2);
    assert_eq!(events[0]["at"], "14:02:03");
    assert_eq!(events[0]["correlation"]["request"], "p-9");
    assert_eq!(events[1]["decoding"]["code"], "4020");
    let (status, out) = run(log, false);
    assert_eq!(status, 0);
    assert!(out.contains("channel_not_authorized"), "{out}");
    assert!(out.contains("request: p-9"), "{out}");
    let (status, out) = run("nothing to see here\n", false);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("no catalogued error or close in 1 lines"),
        "{out}"
    );
}

#[test]
fn decode_with_nothing_to_decode_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .arg("decode")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing to decode"), "{stderr}");
}

/// What a player pasted is printed as text: the title sequence, C1 and bidi controls in the
/// input and in the fields echoed from it are shown as `\u{…}`, in the human output and in
/// `--json` (where they are JSON escapes of the same value).
#[test]
fn decode_prints_hostile_input_escaped() {
    let hostile = "{\"req\":\"v1.\u{1b}]2;PWNED\u{7}\u{9b}2J\u{202e}\",\"data\":{}}";
    let undecodable = "close 4020 \u{1b}[2J\u{202e}";
    let (_, out) = relaydeck(&["decode", hostile, undecodable, "\u{1b}]2;PWNED\u{7}"]);
    assert!(
        !out.chars()
            .any(|c| c != '\n' && relaydeck::text::is_hidden(c)),
        "{out:?}"
    );
    assert!(
        out.contains("a Talo socket request (v1.\\u{1b}]2;PWNED\\u{7}\\u{9b}2J\\u{202e})"),
        "{out}"
    );
    assert!(out.contains("\\u{1b}]2;PWNED\\u{7}"), "{out}");

    let (_, out) = relaydeck(&["decode", "--json", hostile]);
    assert!(
        !out.chars()
            .any(|c| c != '\n' && relaydeck::text::is_hidden(c)),
        "{out:?}"
    );
    let value: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["input"], hostile);
}

/// `serve --log-format json` writes one JSON object per line (its shutdown notice here).
#[test]
fn serve_logs_json_lines_when_asked() {
    use std::io::{BufRead, BufReader, Read};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("RELAYDECK_ADMIN_TOKEN")
        .env("RELAYDECK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("listening on "), "{first}");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // The server exits within its shutdown timeout, which ends its stderr.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutting down"))),
        "{stderr}"
    );
}
