//! Fuzzing on stable Rust: every parser that reads input from outside, driven by proptest.
//!
//! Each target mixes well-formed inputs built from the wire format, the same inputs with a few
//! bytes mutated (replaced, inserted, deleted, truncated), and free noise, and checks
//! invariants rather than only the absence of a panic: what parses re-serializes to something
//! that parses the same, limits hold, and a rejection carries what the protocol says it must.
//! The README's "Fuzzing" section lists what each target checks.
//!
//! ```text
//! cargo test --test fuzz                                      # 400 inputs per target
//! cargo test --release --test fuzz -- --ignored --nocapture   # 1,000,000 inputs per target
//! RELAYDECK_FUZZ_CASES=200000 cargo test --release --test fuzz -- --ignored   # what CI runs
//! ```
//! The runs are deterministic: the same budget and seed (`RELAYDECK_FUZZ_SEED`, default 0)
//! give the same inputs, so a failure reproduces. proptest shrinks a failing input and prints
//! the smallest that still fails, with the seed and the command that reproduces it. Failures
//! are not persisted to `proptest-regressions/` files: each minimal input found becomes an
//! explicit `#[test]` beside its target, named for what it showed, so that it runs in every
//! `cargo test` whatever the budget.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};

/// Inputs per target in the default run: enough to catch regressions, fast in CI.
const SHORT: u32 = 400;
/// Inputs per target in the long run unless `RELAYDECK_FUZZ_CASES` says otherwise.
const LONG: u32 = 1_000_000;

/// The long run's budget: `RELAYDECK_FUZZ_CASES` (underscores allowed), else [`LONG`]. A value
/// that does not read as a count stops the run rather than quietly running another budget.
fn long_cases() -> u32 {
    match std::env::var("RELAYDECK_FUZZ_CASES") {
        Ok(text) => text
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("RELAYDECK_FUZZ_CASES={text:?} is not a count")),
        Err(_) => LONG,
    }
}

/// `RELAYDECK_FUZZ_SEED`: 0 (the default) is proptest's fixed ChaCha seed; any other number
/// explores other inputs, and is printed with a failure so that it can be replayed.
fn seed() -> u64 {
    match std::env::var("RELAYDECK_FUZZ_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("RELAYDECK_FUZZ_SEED={text:?} is not a number")),
        Err(_) => 0,
    }
}

fn rng(seed: u64) -> TestRng {
    if seed == 0 {
        return TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    }
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Run `check` on `cases` inputs from `strategy` and print how many were executed.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig {
        cases,
        // Minimal inputs become named regression tests instead (see the module comment).
        failure_persistence: None,
        max_global_rejects: cases,
        ..ProptestConfig::default()
    };
    let seed = seed();
    let mut runner = TestRunner::new_with_rng(config, rng(seed));
    let executed = Cell::new(0u64);
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        executed.set(executed.get() + 1);
        check(input)
    });
    println!(
        "fuzz {name}: {} inputs in {:.1} s",
        executed.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(error) = result {
        panic!(
            "{name}: {error}\n(seed {seed}, {cases} inputs of {name}: the same seed and \
             RELAYDECK_FUZZ_CASES give the same inputs again; add the minimal input as a \
             regression test beside the target)"
        );
    }
    assert!(
        executed.get() >= u64::from(cases),
        "{name}: only {} of {cases} inputs ran",
        executed.get()
    );
}

/// A target's default run (`cargo test`) and its long run (`--ignored`), both calling the
/// module's `run(cases)`.
macro_rules! runs {
    () => {
        #[test]
        fn short() {
            run(SHORT);
        }

        #[test]
        #[ignore = "long run: cargo test --release --test fuzz -- --ignored"]
        fn long() {
            run(long_cases());
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Input builders shared by the targets
// ---------------------------------------------------------------------------------------------

/// Apply byte edits `(operation, position, byte)` to `text`.
fn mutate(text: String, edits: Vec<(u8, usize, u8)>) -> String {
    let mut bytes = text.into_bytes();
    for (operation, position, byte) in edits {
        let at = position % (bytes.len() + 1);
        match operation % 5 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ if at < bytes.len() => {
                // Duplicate a run: repeated keys, doubled brackets.
                let end = (at + usize::from(byte % 16) + 1).min(bytes.len());
                let run = bytes[at..end].to_vec();
                bytes.splice(at..at, run);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bytes that matter to JSON and to the formats built on it, plus anything at all.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(b"{}[]\":,\\ 0123456789-.eEtfnulrasx/*\x00\x1b\xff\xc3".to_vec()),
        1 => any::<u8>(),
    ]
}

/// `text` (JSON) with one of its values, chosen by `at`, replaced by a large one: a long
/// string or a long array. Limits and echo bounds only show with inputs this size.
fn inflate(text: String, at: usize, size: usize, as_array: bool) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    let big = if as_array {
        Value::Array(vec![Value::from(0); size / 2])
    } else {
        Value::from("x".repeat(size))
    };
    if let Some(slot) = value.pointer_mut(&all[at % all.len()]) {
        *slot = big;
    }
    value.to_string()
}

/// Every JSON pointer of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// Well-formed inputs, the same mutated or with a value made large, and free noise.
fn inputs(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        3 => valid.clone(),
        1 => (valid.clone(), any::<usize>(), 200usize..5000, any::<bool>())
            .prop_map(|(text, at, size, as_array)| inflate(text, at, size, as_array)),
        4 => (valid, vec((any::<u8>(), any::<usize>(), edit_byte()), 1..5))
            .prop_map(|(text, edits)| mutate(text, edits)),
        1 => ".{0,120}",
        1 => arbitrary_json().prop_map(|v| v.to_string()),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep. Numbers are integers: they round-trip exactly.
fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-zA-Z_]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A JSON number as a client may write it: beyond u64 and f64 (`1e400`, thirty digits),
/// signed zero, exponents and fractions a float cannot hold exactly.
fn number_text() -> BoxedStrategy<String> {
    "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?".boxed()
}

/// JSON text as clients write it, which a relay passes on byte for byte: trees, numbers no
/// `serde_json::Value` holds, and whitespace between tokens.
fn raw_json() -> BoxedStrategy<String> {
    prop_oneof![
        3 => arbitrary_json().prop_map(|v| v.to_string()),
        1 => arbitrary_json().prop_map(|v| serde_json::to_string_pretty(&v).unwrap()),
        1 => number_text(),
        1 => vec(number_text(), 0..4).prop_map(|n| format!("[ {} ]", n.join(" ,"))),
        1 => (number_text(), "[ -~]{0,8}")
            .prop_map(|(n, s)| format!("{{\"n\": {n}, \"s\":{}}}", json!(s))),
        // Around the depth a relay allows (`protocol::json::MAX_DEPTH` less the envelope).
        1 => (120usize..130, any::<bool>()).prop_map(|(n, object)| if object {
            format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
        } else {
            format!("{}{}", "[".repeat(n), "]".repeat(n))
        }),
    ]
    .boxed()
}

/// How deep valid JSON text nests arrays and objects, read independently of the server's
/// scanner.
fn depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = json.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn short_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_/.-]{0,24}",
        1 => "\\PC{0,24}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn optional<T: std::fmt::Debug + Clone + 'static>(
    strategy: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 2 => strategy.prop_map(Some)].boxed()
}

/// Insert `key: value` when `value` is given.
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

mod admin;
mod bus;
mod config;
mod decode;
mod files;
mod flow;
mod flow_chain;
mod http;
mod pattern;
mod pubsub;
mod session;
mod signal_fish;
mod talo;
mod token;
