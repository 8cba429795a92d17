//! Server config: server::config::Config::parse

use super::*;
use relaydeck::server::config::Config;

/// The demo config with a few of its values replaced by anything.
fn edited_demo() -> BoxedStrategy<String> {
    let demo = serde_json::to_value(Config::demo()).unwrap();
    let mut all = Vec::new();
    pointers(&demo, String::new(), &mut all);
    vec((proptest::sample::select(all), arbitrary_json()), 1..3)
        .prop_map(move |edits| {
            let mut value = demo.clone();
            for (pointer, replacement) in edits {
                if let Some(slot) = value.pointer_mut(&pointer) {
                    *slot = replacement;
                }
            }
            value.to_string()
        })
        .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    if let Ok(config) = Config::parse(&text, "fuzz.json") {
        let again = serde_json::to_string(&config).unwrap();
        prop_assert_eq!(Config::parse(&again, "again.json").ok(), Some(config));
    }
    Ok(())
}

fn run(cases: u32) {
    fuzz("config", cases, inputs(edited_demo()), check);
}

#[test]
fn demo_config_round_trips() {
    check(serde_json::to_string(&Config::demo()).unwrap()).unwrap();
    assert!(Config::parse(&serde_json::to_string(&Config::demo()).unwrap(), "demo").is_ok());
}

runs!();
