//! Checks on JSON text that the relays splice without parsing into a tree.

/// The deepest nesting a relayed value may have: serde_json's own recursion limit, so that
/// every frame relayed is one a depth-limited parser on the other side can read.
pub const MAX_DEPTH: usize = 128;

/// Whether valid JSON text nests arrays and objects deeper than `max`. Raw values are skipped
/// over by a scanner that does not count depth, so relaying them unchecked would hand other
/// clients frames their parsers refuse.
pub fn nested_deeper_than(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(!nested_deeper_than(r#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nested_deeper_than(r#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!nested_deeper_than(r#""[[[[[[""#, 1));
        assert!(!nested_deeper_than(r#"["\"[[[["]"#, 1));
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(nested_deeper_than(&deep, MAX_DEPTH));
        let fine = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(!nested_deeper_than(&fine, MAX_DEPTH));
    }
}
