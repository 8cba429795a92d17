//! Session files: session::Session::parse

use super::*;
use relaydeck::session::{
    Session, Step, MAX_PAD_BYTES, MAX_REPEAT, MAX_SESSION_MS, MAX_TIMEOUT_MS, MAX_WAIT_MS,
};

fn path() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "/[a-z0-9/?=&_-]{0,20}",
        1 => "@[a-z.]{1,10}/x",
        1 => "(https?|ws)://[a-z.]{1,10}/",
        1 => "[a-z:0-9]{1,10}/?",
        1 => "/\\$\\{[a-z]{1,4}\\}",
    ]
    .boxed()
}

fn large() -> BoxedStrategy<u64> {
    prop_oneof![3 => 0u64..70_000, 1 => any::<u64>()].boxed()
}

fn step() -> BoxedStrategy<Value> {
    prop_oneof![
        (path(), optional(100u16..600)).prop_map(|(path, status)| {
            let mut step = json!({"step": "connect", "conn": "a", "path": path});
            put(
                step.as_object_mut().unwrap(),
                "expect_status",
                status.map(Value::from),
            );
            step
        }),
        (arbitrary_json(), optional(large()), optional(large())).prop_map(
            |(frame, repeat, pad)| {
                let mut step = json!({"step": "send", "conn": "a", "frame": frame});
                put(
                    step.as_object_mut().unwrap(),
                    "repeat",
                    repeat.map(Value::from),
                );
                put(
                    step.as_object_mut().unwrap(),
                    "pad_to",
                    pad.map(Value::from),
                );
                step
            }
        ),
        (short_text(), optional(large())).prop_map(|(code, timeout)| {
            let mut step = json!({"step": "expect", "conn": "a", "code": code});
            put(
                step.as_object_mut().unwrap(),
                "timeout_ms",
                timeout.map(Value::from),
            );
            step
        }),
        (1000u16..5000, optional(large())).prop_map(|(code, timeout)| {
            let mut step = json!({"step": "expect_close", "conn": "a", "code": code});
            put(
                step.as_object_mut().unwrap(),
                "timeout_ms",
                timeout.map(Value::from),
            );
            step
        }),
        (path(), optional(large())).prop_map(|(path, repeat)| {
            let mut step = json!({"step": "http", "method": "GET", "path": path});
            put(
                step.as_object_mut().unwrap(),
                "repeat",
                repeat.map(Value::from),
            );
            step
        }),
        short_text().prop_map(
            |peer| json!({"step": "admin", "command": {"command": "kick", "peer": peer}})
        ),
        large().prop_map(|ms| json!({"step": "wait", "ms": ms})),
    ]
    .boxed()
}

fn file() -> BoxedStrategy<String> {
    vec(step(), 0..8)
        .prop_map(|steps| {
            let mut text = r#"{"session":1,"name":"fuzz","dialect":"pubsub"}"#.to_owned();
            for step in steps {
                text.push('\n');
                text.push_str(&step.to_string());
            }
            text
        })
        .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    let Ok(session) = Session::parse(&text, "fuzz") else {
        return Ok(());
    };
    prop_assert_eq!(
        Session::parse(&session.to_jsonl(), "again").ok(),
        Some(session.clone())
    );
    prop_assert!(session.time_budget_ms() <= MAX_SESSION_MS);
    for step in &session.steps {
        match step {
            Step::Wait { ms } => prop_assert!(*ms <= MAX_WAIT_MS),
            Step::Expect { timeout_ms, .. } | Step::ExpectClose { timeout_ms, .. } => {
                prop_assert!(timeout_ms.is_none_or(|t| t <= MAX_TIMEOUT_MS));
            }
            Step::Connect { path, .. } | Step::Http { path, .. } => {
                prop_assert!(
                    path.starts_with("${") || (path.starts_with('/') && !path.starts_with("//")),
                    "{:?}",
                    path
                );
            }
            Step::Send { repeat, pad_to, .. } => {
                prop_assert!(repeat.is_none_or(|r| r <= MAX_REPEAT));
                prop_assert!(pad_to.is_none_or(|p| p <= MAX_PAD_BYTES));
            }
            _ => {}
        }
        if let Step::Connect { path, .. } | Step::Http { path, .. } = step {
            if !path.starts_with("${") {
                prop_assert!(step.validate().is_ok());
            }
        }
    }
    Ok(())
}

fn run(cases: u32) {
    fuzz("session files", cases, inputs(file()), check);
}

runs!();
