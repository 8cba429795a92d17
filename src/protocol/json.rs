//! Checks on JSON text that the relays splice without parsing into a tree.

/// The deepest nesting of a whole frame that serde_json reads: its recursion limit of 128
/// refuses the 128th level. A relayed value sits inside its frame's envelope, so a relay
/// allows this less the envelope's levels ([`relayable_depth`]): every frame relayed is then
/// one a depth-limited parser on the other side can read.
pub const MAX_DEPTH: usize = 127;

/// The deepest a value relayed inside `envelope_levels` levels of objects may nest.
pub const fn relayable_depth(envelope_levels: usize) -> usize {
    MAX_DEPTH.saturating_sub(envelope_levels)
}

/// Whether valid JSON text nests arrays and objects deeper than `max`. Raw values are skipped
/// over by a scanner that does not count depth, so relaying them unchecked would hand other
/// clients frames their parsers refuse.
pub fn nested_deeper_than(json: &str, max: usize) -> bool {
    shape(json, max).too_deep
}

/// What one pass over valid JSON text finds ([`shape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// It nests arrays and objects deeper than asked (see [`nested_deeper_than`]).
    pub too_deep: bool,
    /// It has whitespace between tokens, outside its strings.
    pub spaced: bool,
}

/// [`nested_deeper_than`] and whether the text has whitespace between tokens, in one pass
/// (the relay's hot path reads every payload once).
pub fn shape(json: &str, max: usize) -> Shape {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut spaced = false;
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
                    return Shape {
                        too_deep: true,
                        spaced,
                    };
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b' ' | b'\n' | b'\r' | b'\t' => spaced = true,
            _ => {}
        }
    }
    Shape {
        too_deep: false,
        spaced,
    }
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
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(nested_deeper_than(&deep, MAX_DEPTH));
        let fine = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(!nested_deeper_than(&fine, MAX_DEPTH));
    }

    #[test]
    fn whitespace_counts_only_between_tokens() {
        let spaced = |json: &str| shape(json, MAX_DEPTH).spaced;
        assert!(!spaced(r#"{"a b":["\t",1]}"#));
        assert!(spaced(r#"{"a": 1}"#));
        assert!(spaced("[1,\n2]"));
        assert!(!spaced(r#""x \" y""#));
    }

    #[test]
    fn max_depth_is_what_serde_json_reads() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(serde_json::from_str::<serde_json::Value>(&nested(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(MAX_DEPTH + 1)).is_err());
        // A value at the relayable depth inside its envelope is still readable whole.
        let framed = format!(r#"{{"data":{{"data":{}}}}}"#, nested(relayable_depth(2)));
        assert!(serde_json::from_str::<serde_json::Value>(&framed).is_ok());
    }
}
