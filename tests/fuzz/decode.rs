//! The decoder (`catalog::decode::decode`: `relaydeck decode`, the console's `:decode`) and
//! pasted logs (`catalog::timeline::timeline`: `relaydeck timeline`, the console's `:paste`)

use super::*;
use relaydeck::catalog::decode::decode;
use relaydeck::catalog::timeline::timeline;
use relaydeck::catalog::{self, Dialect, Entry};

fn example() -> BoxedStrategy<String> {
    let examples: Vec<&'static str> = catalog::all().map(|e: &'static Entry| e.example).collect();
    proptest::sample::select(examples)
        .prop_map(str::to_owned)
        .boxed()
}

fn check((input, hint): (String, Option<Dialect>)) -> Result<(), TestCaseError> {
    let plain = decode(&input, None);
    // Deterministic, and blind to surrounding whitespace.
    prop_assert_eq!(&decode(&input, None), &plain);
    prop_assert_eq!(&decode(&format!(" \n{input}\t "), None), &plain);
    let Ok(plain) = plain else {
        return Ok(());
    };
    prop_assert_eq!(plain.dialect.is_some() || plain.candidates.is_empty(), true);
    // The result is JSON-serializable (decode --json).
    prop_assert!(serde_json::to_string(&plain).is_ok());
    if let Some(hint) = hint {
        if let Ok(narrowed) = decode(&input, Some(hint)) {
            // A hint narrows; it never invents an entry.
            for entry in &narrowed.candidates {
                prop_assert!(
                    entry.dialect == hint || entry.dialect == Dialect::Websocket,
                    "{} for hint {}",
                    entry.qualified(),
                    hint
                );
                prop_assert!(plain.candidates.contains(entry));
            }
        }
    }
    Ok(())
}

/// One line of a pasted log: catalogued frames, close and HTTP lines, noise, behind a
/// timestamp or not.
fn log_line() -> BoxedStrategy<String> {
    let body = prop_oneof![
        3 => inputs(example()),
        1 => ("(close |HTTP/1.1 |code )", 0u32..70_000, "[ -~]{0,20}")
            .prop_map(|(head, number, tail)| format!("{head}{number}{tail}")),
    ];
    let stamp = proptest::sample::select(vec![
        "",
        "2026-01-01T00:00:00Z ",
        "[12:00:01.250] ",
        "2026-01-01 12:00:01,5 INFO ",
    ]);
    (stamp, body)
        .prop_map(|(stamp, body)| format!("{stamp}{}", body.replace(['\n', '\r'], " ")))
        .boxed()
}

/// A log is read line by line: the timeline of the whole is each line's timeline in order,
/// every event quotes its own line and decodes as the decoder decodes that part alone, but
/// for the order of its readings: one of the dialect an earlier line showed may go first.
fn check_timeline((lines, hint): (Vec<String>, Option<Dialect>)) -> Result<(), TestCaseError> {
    let log = lines.join("\n");
    let whole = timeline(&log, hint);
    prop_assert!(!whole.truncated);
    // An empty last line is no line: "a\n" is one line, "" none.
    let counted = lines.len() - usize::from(lines.last().is_some_and(String::is_empty));
    prop_assert_eq!(whole.lines, counted);
    let mut expected = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        for mut event in timeline(line, hint).events {
            event.line = index + 1;
            expected.push(event);
        }
    }
    prop_assert_eq!(whole.events.len(), expected.len());
    let mut shown: Vec<Dialect> = Vec::new();
    for (event, alone) in whole.events.iter().zip(&expected) {
        prop_assert_eq!(event.line, alone.line);
        prop_assert_eq!(&event.input, &alone.input);
        prop_assert_eq!(&event.decoding.code, &alone.decoding.code);
        prop_assert_eq!(&event.decoding.fields, &alone.decoding.fields);
        let mut ours = event.decoding.candidates.clone();
        let mut theirs = alone.decoding.candidates.clone();
        if event.decoding.best() != alone.decoding.best() {
            // Moved first for the surrounding lines: a dialect some line before it showed.
            let best = event.decoding.best().map(|e| e.dialect);
            prop_assert!(hint.is_none());
            let earlier = lines[..event.line].iter().any(|l| may_name_a_dialect(l));
            prop_assert!(best.is_some_and(|d| shown.contains(&d) || earlier));
        }
        ours.sort_by_key(|e| e.qualified());
        theirs.sort_by_key(|e| e.qualified());
        prop_assert_eq!(ours, theirs);
        if let Some(d) = event.decoding.dialect {
            shown.push(d);
        }
    }
    for event in &whole.events {
        let line = &lines[event.line - 1];
        prop_assert!(
            line.contains(&event.input),
            "{:?} not in {:?}",
            event.input,
            line
        );
        prop_assert!(event.decoding.best().is_some());
        let alone = decode(&event.input, hint).ok();
        prop_assert_eq!(alone.as_ref().map(|d| &d.code), Some(&event.decoding.code));
        if let Some(at) = &event.at {
            // As written, less any brackets around it.
            prop_assert!(line.contains(at.as_str()), "{:?}", at);
        }
    }
    Ok(())
}

/// Whether a line can set the dialect of the lines after it: a URL of the server's routes, or
/// a frame (any JSON object names its dialect by its shape).
fn may_name_a_dialect(line: &str) -> bool {
    ["/ws", "ticket=", "/talo", "/v1?", "{"]
        .iter()
        .any(|mark| line.contains(mark))
}

fn run(cases: u32) {
    let hint = optional(proptest::sample::select(Dialect::ALL.to_vec()));
    fuzz(
        "decode timeline (pasted logs)",
        cases / 4,
        (vec(log_line(), 0..5), hint.clone()),
        check_timeline,
    );
    let text = prop_oneof![
        2 => inputs(example()),
        1 => ("(close |HTTP/1.1 |)", 0u32..70_000, "[ -~\n]{0,40}")
            .prop_map(|(head, number, tail)| format!("{head}{number}{tail}")),
    ];
    fuzz("decode", cases, (text, hint), check);
    // Every entry's example, mutated or not, with every hint: still no panic, still the
    // invariants; unmutated, it decodes to its own entry.
    fuzz(
        "decode catalog examples",
        cases / 4,
        proptest::sample::select(catalog::all().collect::<Vec<_>>()),
        |entry| {
            let decoding = decode(entry.example, Some(entry.dialect));
            prop_assert_eq!(
                decoding.ok().and_then(|d| d.best()).map(|e| e.qualified()),
                Some(entry.qualified())
            );
            Ok(())
        },
    );
}

runs!();
