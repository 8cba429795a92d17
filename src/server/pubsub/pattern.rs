//! Channel patterns of pub/sub keys: `*` matches within one path segment, `**` across any
//! number of segments, `\` makes the next character literal (`\*` is a star).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// Any run of characters other than `/`.
    Star,
    /// Any run of characters.
    DoubleStar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("a pattern cannot be empty".to_owned());
        }
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => tokens.push(Token::Literal(escaped)),
                    None => return Err("a trailing \\ escapes nothing".to_owned()),
                },
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    tokens.push(Token::DoubleStar);
                }
                '*' => tokens.push(Token::Star),
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(Pattern { tokens })
    }

    /// Dynamic programming over (token, character) rather than backtracking, so that no
    /// pattern can make a match take more than tokens × characters steps.
    pub fn matches(&self, channel: &str) -> bool {
        let chars: Vec<char> = channel.chars().collect();
        let n = chars.len();
        // reachable[j]: the tokens consumed so far can match exactly chars[..j].
        let mut reachable = vec![false; n + 1];
        reachable[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; n + 1];
            match token {
                Token::Literal(c) => {
                    for j in 0..n {
                        if reachable[j] && chars[j] == *c {
                            next[j + 1] = true;
                        }
                    }
                }
                Token::Star | Token::DoubleStar => {
                    let crosses_segments = *token == Token::DoubleStar;
                    let mut carrying = false;
                    for j in 0..=n {
                        carrying |= reachable[j];
                        next[j] = carrying;
                        if j < n && chars[j] == '/' && !crosses_segments {
                            carrying = false;
                        }
                    }
                }
            }
            reachable = next;
        }
        reachable[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, channel: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(channel)
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(m("demo/public/*", "demo/public/lobby"));
        assert!(!m("demo/public/*", "demo/public/a/b"));
        assert!(m("demo/*/chat", "demo/room-1/chat"));
        assert!(m("room-*", "room-42"));
        assert!(!m("room-*", "room-4/2"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("demo/**", "demo/a"));
        assert!(m("demo/**", "demo/a/b/c"));
        assert!(!m("demo/**", "other/a"));
        assert!(m("**", "anything/at/all"));
        assert!(m("a/**/z", "a/b/c/z"));
    }

    #[test]
    fn escapes_make_stars_literal() {
        assert!(m(r"demo/\*", "demo/*"));
        assert!(!m(r"demo/\*", "demo/x"));
        assert!(m(r"a\\b", r"a\b"));
        assert!(Pattern::parse("oops\\").is_err());
        assert!(Pattern::parse("").is_err());
    }

    #[test]
    fn pathological_patterns_stay_cheap() {
        let pattern = "*a".repeat(50);
        let channel = "a".repeat(255) + "b";
        assert!(!m(&pattern, &channel));
    }
}
