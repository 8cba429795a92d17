//! Channel patterns: server::pubsub::pattern::Pattern

use super::*;
use regex::Regex;
use relaydeck::server::pubsub::pattern::Pattern;

/// An independent reading of the documented syntax, as an anchored regular expression;
/// `None` where the syntax refuses the pattern.
fn oracle(pattern: &str) -> Option<Regex> {
    if pattern.is_empty() {
        return None;
    }
    let mut out = String::from("(?s)^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str(&regex::escape(&chars.next()?.to_string())),
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    Regex::new(&out).ok()
}

fn escape(literal: &str) -> String {
    literal
        .chars()
        .flat_map(|c| match c {
            '\\' | '*' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn check((pattern, channel): (String, String)) -> Result<(), TestCaseError> {
    let parsed = Pattern::parse(&pattern);
    let oracle = oracle(&pattern);
    prop_assert_eq!(parsed.is_ok(), oracle.is_some(), "{:?}", pattern);
    if let (Ok(parsed), Some(oracle)) = (parsed, oracle) {
        prop_assert_eq!(
            parsed.matches(&channel),
            oracle.is_match(&channel),
            "{:?} on {:?}",
            pattern,
            channel
        );
    }
    // A pattern of the escaped channel is that channel and nothing else.
    if !channel.is_empty() {
        let literal = Pattern::parse(&escape(&channel)).unwrap();
        prop_assert!(literal.matches(&channel));
        let longer = format!("{channel}x");
        prop_assert!(!literal.matches(&longer));
        let shorter: String = channel.chars().skip(1).collect();
        prop_assert!(!literal.matches(&shorter));
        prop_assert!(Pattern::parse("**").unwrap().matches(&channel));
    }
    Ok(())
}

fn run(cases: u32) {
    // A small alphabet makes stars, slashes and escapes meet often.
    let small = || "[ab/*\\\\]{0,12}";
    let strategy = prop_oneof![
        3 => (small(), small()),
        1 => ("\\PC{0,16}", "\\PC{0,24}"),
        1 => ("[a-z/]{0,6}(\\*\\*?[a-z/]{0,4}){0,3}", "[a-z/]{0,30}"),
    ];
    fuzz("pubsub channel pattern", cases, strategy, check);
}

runs!();
