//! The one reader of the seed documents: it extracts what `tests/seeds.rs` checks (the codes,
//! statuses, close codes and example frames each document names) into
//! `tests/data/seed-codes/*.json`, so the tests run on a fresh clone with nothing beside it.
//!
//! ```text
//! RELAYDECK_SEEDS_DIR=../shared/seeds cargo run --example seed_data -- check   # CI
//! RELAYDECK_SEEDS_DIR=../shared/seeds cargo run --example seed_data -- write   # after a seed changes
//! ```
//!
//! `check` exits 1 when the in-repo data no longer says what the documents say; without
//! `RELAYDECK_SEEDS_DIR` it exits 2 rather than passing, so a CI step cannot succeed by
//! accident.

#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use regex::Regex;
use relaydeck::catalog::seeds;
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-codes")
}

/// `signal-fish-error-codes.txt` → `signal-fish-error-codes.json`.
fn data_file(seed: &str) -> PathBuf {
    let stem = Path::new(seed)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(seed);
    data_dir().join(format!("{stem}.json"))
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the patterns below are valid")
}

fn group(captures: &regex::Captures<'_>, index: usize) -> String {
    captures
        .get(index)
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default()
}

/// Every `{ … }` block of a document that parses as JSON (multi-line ones included), verbatim.
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut start = None;
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
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
                        if serde_json::from_str::<Value>(block).is_ok() {
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

fn extract(seed: &str, text: &str) -> Value {
    match seed {
        seeds::SIGNAL_FISH => {
            let codes: Vec<String> = regex(r"(?m)^([A-Z][A-Z0-9_]{3,}) [A-Z]")
                .captures_iter(text)
                .map(|c| group(&c, 1))
                .collect();
            json!({ "seed": seed, "codes": codes, "examples": json_blocks(text) })
        }
        seeds::TALO_SOCKET => {
            let codes: Vec<String> = regex(r#""errorCode":\s*"([A-Z_]+)""#)
                .captures_iter(text)
                .map(|c| group(&c, 1))
                .collect();
            json!({ "seed": seed, "codes": codes, "examples": json_blocks(text) })
        }
        seeds::TALO_HTTP => {
            let statuses: Vec<String> = regex(r"(?m)^(\d{3}) [A-Z]")
                .captures_iter(text)
                .map(|c| group(&c, 1))
                .collect();
            let session_lines: Vec<Value> =
                regex(r"(?m)^(401 Authorized - \{.*errorCode: '([A-Z_]+)' \})")
                    .captures_iter(text)
                    .map(|c| json!({ "line": group(&c, 1), "code": group(&c, 2) }))
                    .collect();
            json!({ "seed": seed, "statuses": statuses, "session_lines": session_lines })
        }
        seeds::FLOW => {
            let status_in_row = regex(r"\b(400|404|429|500)\b");
            let messages: Vec<Value> = regex(r#"(?m)^\| \*"([^"]+)"\* \|(.*)$"#)
                .captures_iter(text)
                .map(|c| {
                    // Rows of the "Message Format Errors" table give their status in the
                    // section heading, not in the row: 400.
                    let status: u16 = status_in_row
                        .captures(&group(&c, 2))
                        .and_then(|s| s[1].parse().ok())
                        .unwrap_or(400);
                    json!({ "message": group(&c, 1), "status": status })
                })
                .collect();
            json!({ "seed": seed, "messages": messages })
        }
        seeds::PUBSUB => {
            let codes: Vec<String> = regex(r"(?m)^([a-z][a-z_]+) \| ")
                .captures_iter(text)
                .map(|c| group(&c, 1))
                .filter(|code| code != "code")
                .collect();
            let closes: Vec<Value> = regex(r"(\d{4}) ([a-z_]+)")
                .captures_iter(text)
                .map(|c| json!({ "code": group(&c, 1), "reason": group(&c, 2) }))
                .collect();
            json!({ "seed": seed, "codes": codes, "closes": closes, "examples": json_blocks(text) })
        }
        other => json!({ "seed": other }),
    }
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode != "check" && mode != "write" {
        eprintln!("usage: RELAYDECK_SEEDS_DIR=<folder> seed_data check|write");
        return ExitCode::from(2);
    }
    let Some(seeds_dir) = std::env::var_os("RELAYDECK_SEEDS_DIR").map(PathBuf::from) else {
        eprintln!("RELAYDECK_SEEDS_DIR is not set: there are no seed documents to compare with");
        return ExitCode::from(2);
    };
    let mut stale = Vec::new();
    for seed in seeds::ALL {
        let path = seeds_dir.join(seed);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let fresh = extract(seed, &text);
        let target = data_file(seed);
        if mode == "write" {
            let mut pretty = serde_json::to_string_pretty(&fresh).expect("a JSON value prints");
            pretty.push('\n');
            if let Err(e) =
                std::fs::create_dir_all(data_dir()).and_then(|()| std::fs::write(&target, pretty))
            {
                eprintln!("cannot write {}: {e}", target.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", target.display());
            continue;
        }
        let stored = std::fs::read_to_string(&target)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if stored.as_ref() != Some(&fresh) {
            stale.push(format!("{} (from {seed})", target.display()));
        }
    }
    if stale.is_empty() {
        if mode == "check" {
            println!(
                "the in-repo seed data matches the {} seed documents in {}",
                seeds::ALL.len(),
                seeds_dir.display()
            );
        }
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "the in-repo seed data no longer matches the seed documents:\n  {}\nregenerate it with `RELAYDECK_SEEDS_DIR={} cargo run --example seed_data -- write`, then make tests/seeds.rs pass",
            stale.join("\n  "),
            seeds_dir.display()
        );
        ExitCode::FAILURE
    }
}
