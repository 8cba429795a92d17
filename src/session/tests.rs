use std::collections::BTreeMap;

use serde_json::json;

use super::replay::{contains, substitute, Target};
use super::*;

const EXAMPLE: &str = r#"
// A comment line, then the header.
{"session":1,"name":"kick","description":"an admin kicks a pub/sub peer","dialect":"pubsub","expect_codes":["pubsub:4020"]}
{"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
{"step":"expect","conn":"a","match":{"type":"welcome"},"capture":{"me":"/peerId"}}
{"step":"send","conn":"a","frame":{"type":"subscribe","channel":"demo/x"},"repeat":3}
{"step":"admin","command":{"command":"kick","peer":"${peer:a}"}}
{"step":"expect_close","conn":"a","code":4020,"reason":"admin_disconnect"}
{"step":"http","method":"POST","path":"/v1/tokens","expect_status":401}
{"step":"wait","ms":10}
"#;

#[test]
fn parses_the_documented_example() {
    let session = Session::parse(EXAMPLE, "example").unwrap();
    assert_eq!(session.header.name, "kick");
    assert_eq!(session.header.dialect, Dialect::Pubsub);
    assert_eq!(session.steps.len(), 7);
    assert!(matches!(
        &session.steps[2],
        Step::Send {
            repeat: Some(3),
            ..
        }
    ));
}

#[test]
fn round_trips_through_jsonl() {
    let session = Session::parse(EXAMPLE, "example").unwrap();
    let again = Session::parse(&session.to_jsonl(), "again").unwrap();
    assert_eq!(session, again);
}

#[test]
fn errors_name_the_file_and_line() {
    let text = "{\"session\":1,\"name\":\"x\",\"dialect\":\"pubsub\"}\n\n{\"step\":\"teleport\"}\n";
    let error = Session::parse(text, "bad.jsonl").unwrap_err().to_string();
    assert!(error.starts_with("bad.jsonl: line 3: bad step"), "{error}");
}

#[test]
fn refuses_invalid_steps_with_a_reason() {
    for (step, reason) in [
        (r#"{"step":"send","conn":"a"}"#, "needs `frame`"),
        (
            r#"{"step":"send","conn":"a","frame":{},"text":"x"}"#,
            "not both",
        ),
        (r#"{"step":"expect","conn":"a"}"#, "needs `code` or `match`"),
        (r#"{"step":"wait","ms":999999}"#, "limited"),
        (
            r#"{"step":"send","conn":"a","text":"x","pad_to":999999999999}"#,
            "pad_to is limited",
        ),
        (
            r#"{"step":"send","conn":"a","text":"x","repeat":4000000000}"#,
            "repeat is limited",
        ),
        (
            r#"{"step":"admin","command":{"peer":"p1"}}"#,
            "\"command\" field",
        ),
        (
            r#"{"step":"connect","conn":"a","path":"/","bogus":1}"#,
            "unknown field",
        ),
    ] {
        let text = format!("{{\"session\":1,\"name\":\"x\",\"dialect\":\"pubsub\"}}\n{step}\n");
        let error = Session::parse(&text, "f").unwrap_err().to_string();
        assert!(error.contains(reason), "{step}: {error}");
    }
}

#[test]
fn refuses_empty_files_and_other_format_versions() {
    assert!(matches!(
        Session::parse("\n// only a comment\n", "f"),
        Err(SessionError::Empty { .. })
    ));
    let error = Session::parse(r#"{"session":2,"name":"x","dialect":"pubsub"}"#, "f")
        .unwrap_err()
        .to_string();
    assert!(error.contains("format 2 is not supported"), "{error}");
}

#[test]
fn substitutes_variables_everywhere_and_names_missing_ones() {
    let variables = BTreeMap::from([
        ("ticket".to_owned(), json!("t-1")),
        ("alias".to_owned(), json!(7)),
    ]);
    let mut value = json!({"path": "/?ticket=${ticket}", "nested": ["${ticket}${ticket}"], "id": "${alias}", "header": "alias ${alias}"});
    substitute(&mut value, &variables).unwrap();
    assert_eq!(
        value,
        json!({"path": "/?ticket=t-1", "nested": ["t-1t-1"], "id": 7, "header": "alias 7"})
    );

    let mut missing = json!("${nope}");
    let error = substitute(&mut missing, &variables).unwrap_err();
    assert!(error.contains("${nope} is not set"), "{error}");
    assert!(substitute(&mut json!("${open"), &variables).is_err());
}

#[test]
fn match_is_a_recursive_subset() {
    let frame = json!({"type": "ack", "requestId": "r1", "extra": {"a": 1, "b": [1, 2]}});
    assert!(contains(&frame, &json!({"type": "ack"})));
    assert!(contains(&frame, &json!({"extra": {"b": [1, 2]}})));
    assert!(!contains(&frame, &json!({"extra": {"b": [1]}})));
    assert!(!contains(&frame, &json!({"type": "error"})));
    assert!(!contains(&frame, &json!({"missing": null})));
}

#[test]
fn targets_from_urls() {
    assert_eq!(
        Target::from_url("ws://127.0.0.1:7878", None).unwrap().addr,
        "127.0.0.1:7878"
    );
    assert_eq!(
        Target::from_url("http://[::1]:9000/admin", None)
            .unwrap()
            .addr,
        "[::1]:9000"
    );
    let secure = Target::from_url("wss://example.test:8443/x", None).unwrap();
    assert_eq!(secure.ws_url("/admin"), "wss://example.test:8443/admin");
    assert_eq!(
        secure.http_url("/health"),
        "https://example.test:8443/health"
    );
    assert_eq!(
        Target::from_url("https://example.test", None).unwrap().addr,
        "wss://example.test:443"
    );
    assert!(Target::from_url("ws://nohost", None).is_err());
}

fn one_step(step: &str) -> Result<Session, SessionError> {
    Session::parse(
        &format!("{{\"session\":1,\"name\":\"x\",\"dialect\":\"pubsub\"}}\n{step}\n"),
        "f",
    )
}

#[test]
fn paths_never_name_another_host() {
    for path in [
        "@evil.test/x",
        "http://evil.test/x",
        "evil.test:80/x",
        "//evil.test/x",
        "",
        "/v1 tokens",
        "/v1\r\nHost: evil.test",
    ] {
        for step in [
            json!({"step": "http", "method": "GET", "path": path}),
            json!({"step": "connect", "conn": "a", "path": path}),
        ] {
            let error = one_step(&step.to_string()).unwrap_err().to_string();
            assert!(error.contains("path"), "{path:?}: {error}");
        }
    }
    assert!(one_step(r#"{"step":"http","method":"GET","path":"/health"}"#).is_ok());
    assert!(one_step(r#"{"step":"connect","conn":"a","path":"/v1?key=pk_demo&x=@y"}"#).is_ok());
}

#[test]
fn timeouts_and_the_whole_run_are_bounded() {
    for step in [
        format!(
            r#"{{"step":"expect","conn":"a","code":"x","timeout_ms":{}}}"#,
            u64::MAX
        ),
        format!(
            r#"{{"step":"expect_close","conn":"a","code":4001,"timeout_ms":{}}}"#,
            MAX_TIMEOUT_MS + 1
        ),
    ] {
        let error = one_step(&step).unwrap_err().to_string();
        assert!(
            error.contains("timeout_ms is limited to 60000 ms"),
            "{error}"
        );
    }
    let mut text = "{\"session\":1,\"name\":\"x\",\"dialect\":\"pubsub\"}\n".to_owned();
    for _ in 0..=(MAX_SESSION_MS / MAX_WAIT_MS) {
        text.push_str(&format!("{{\"step\":\"wait\",\"ms\":{MAX_WAIT_MS}}}\n"));
    }
    let error = Session::parse(&text, "long.jsonl").unwrap_err().to_string();
    assert!(
        error.contains("line 12") && error.contains("at most 600 s"),
        "{error}"
    );
    // Expects without a timeout count at the default.
    let session = Session::parse(EXAMPLE, "example").unwrap();
    assert_eq!(session.time_budget_ms(), 2 * DEFAULT_TIMEOUT_MS + 10);
}

#[test]
fn one_send_step_is_bounded_in_bytes() {
    let error = one_step(r#"{"step":"send","conn":"a","text":"x","pad_to":16000000,"repeat":5}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("at most 67108864"), "{error}");
    assert!(one_step(r#"{"step":"send","conn":"a","text":"x","pad_to":70000,"repeat":2}"#).is_ok());
}

#[test]
fn admin_steps_are_visible_before_running() {
    assert!(Session::parse(EXAMPLE, "example")
        .unwrap()
        .has_admin_steps());
    assert!(!one_step(r#"{"step":"wait","ms":1}"#)
        .unwrap()
        .has_admin_steps());
}

#[test]
fn printed_reports_carry_no_terminal_control_sequences() {
    let report = replay::StepReport {
        number: 1,
        description: "send a \u{1b}]0;title\u{7}".to_owned(),
        outcome: replay::Outcome::Mismatch {
            expected: "close 4001 \u{1b}[2J".to_owned(),
            received: vec!["close 4000 \u{202e}gnp.exe\u{1b}[31m".to_owned()],
        },
    };
    let text = crate::report::step_text(&report);
    let plain: String = text
        .split('\u{1b}')
        .enumerate()
        .map(|(i, part)| {
            // Our own styling is SGR (`ESC [ … m`); anything else after an escape came
            // from the input.
            if i == 0 {
                part.to_owned()
            } else {
                let end = part.find('m').expect("only SGR escapes remain");
                assert!(
                    part[1..end].chars().all(|c| c.is_ascii_digit() || c == ';')
                        && part.starts_with('['),
                    "a foreign escape sequence reached the output: {part:?}"
                );
                part[end + 1..].to_owned()
            }
        })
        .collect();
    assert!(plain.contains("\\u{1b}]0;title\\u{7}"), "{plain}");
    assert!(plain.contains("\\u{202e}gnp.exe"), "{plain}");
    assert!(!plain.contains('\u{202e}') && !plain.contains('\u{7}'));
}
