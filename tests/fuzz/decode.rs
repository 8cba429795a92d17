//! The decoder: catalog::decode::decode

use super::*;
use relaydeck::catalog::decode::decode;
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

fn run(cases: u32) {
    let hint = optional(proptest::sample::select(Dialect::ALL.to_vec()));
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
