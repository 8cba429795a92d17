//! Text that others chose — identities, player and room names, reasons, frames, addresses,
//! pasted logs — made safe to put on a terminal, and measured in the columns a terminal gives
//! it. Everything that draws such text (the console, the CLI's reports, the server's logs)
//! goes through [`printable`]; nothing here depends on the rest of the crate.
//!
//! A terminal obeys control characters instead of drawing them: ESC starts sequences that
//! set the window title (OSC 2), write the clipboard (OSC 52) or move the cursor to redraw
//! other rows, and bidi controls reorder what an id or code reads as. [`printable`] shows
//! each of them as a `\u{…}` escape, the form `decode` and `replay` have always printed, so
//! the character stays visible and can be searched for.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use unicode_width::UnicodeWidthChar;

/// Whether a terminal would act on `c`, or draw it as nothing while it changes how the text
/// around it reads, rather than show it.
///
/// - C0 (U+0000–U+001F), DEL and C1 (U+0080–U+009F): ESC, CSI and OSC start escape
///   sequences; CR, LF, TAB and BS move the cursor.
/// - Bidi controls: U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069.
/// - Invisible characters that split, join or hide text: U+200B–U+200D, U+2060–U+2064,
///   U+FEFF, the line and paragraph separators U+2028/U+2029, the interlinear annotation
///   marks U+FFF9–U+FFFB and the tag characters U+E0000–U+E007F. The zero-width joiner is
///   among them because terminals disagree on how wide a joined sequence is, which moves
///   every column after it.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// `text` as it may be drawn: every [hidden](is_hidden) character shown as `\u{…}` (ESC as
/// `\u{1b}`), everything else as it is. Tabs and newlines are escaped too, so the result is
/// always one line; a caller that wants several lines splits before calling. Clean text is
/// borrowed, not copied.
pub fn printable(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(is_hidden) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if is_hidden(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text as it may be printed: every [hidden](is_hidden) character that a JSON writer
/// leaves as it is (DEL, C1, bidi and invisible characters; serde escapes only C0) written as
/// a `\uXXXX` escape, which is the same JSON value. For `--json` output that lands on a
/// terminal. Such characters only occur inside strings, where the escape is valid.
pub fn printable_json(json: &str) -> Cow<'_, str> {
    // C0 is escaped inside strings by every JSON writer; outside them it is the layout of
    // pretty-printed JSON (newlines, indentation), which stays.
    let hidden = |c: char| is_hidden(c) && u32::from(c) >= 0x7f;
    let Some(first) = json.find(hidden) else {
        return Cow::Borrowed(json);
    };
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str(&json[..first]);
    for c in json[first..].chars() {
        if hidden(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The columns a terminal gives `c`: two for wide (East Asian, most emoji), none for
/// combining marks, one otherwise. Hidden characters count as none; [`printable`] text has
/// none of them.
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// [`printable`] `text` in at most `max` columns, an ellipsis marking a cut. A wide
/// character that would straddle the edge is left out rather than split.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    let text = printable(text);
    if width(&text) <= max {
        return text;
    }
    let room = max.saturating_sub(1);
    let mut used = 0;
    let mut out = String::with_capacity(max + 3);
    for c in text.chars() {
        let w = char_width(c);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    Cow::Owned(out)
}

/// `text` with its whitespace collapsed to single spaces, cut to `max_chars` characters with
/// an ellipsis: for one-line displays and messages quoting a client's input.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    clip_chars(&collapsed, max_chars)
}

/// `text` cut to `max_chars` characters, the last of them an ellipsis when cut.
pub fn clip_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` cut to `max` bytes on a character boundary, saying how long it was: for stored
/// copies of client input (admin events, recorded paths) bounded in bytes.
pub fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// [`printable`] `text` in exactly `columns` columns: clipped, then padded with spaces. For
/// text laid out in columns by hand, where `format!("{:<n}")` would count characters.
pub fn fit(text: &str, columns: usize) -> String {
    let clipped = clip(text, columns);
    let pad = columns.saturating_sub(width(&clipped));
    let mut out = clipped.into_owned();
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

/// The fields of a log line, laid out as tracing's default formatter does, made [`printable`]:
/// a player's name or a close reason in a log line reaches whoever tails the log. The level,
/// time and target around them are the formatter's own (colours included); only the fields
/// and the message, where client text lands, are escaped. A message of several lines
/// becomes one, so one event stays one line of the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrintableFields;

impl<'writer> FormatFields<'writer> for PrintableFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = FieldVisitor { out: String::new() };
        fields.record(&mut visitor);
        writer.write_str(&visitor.out)
    }
}

/// Writes fields as tracing's default formatter does (`message name=value …`, strings
/// quoted), each value passed through [`printable`]. The default formatter's own escaping
/// covers ESC and a few more, but not CR, LF or the bidi controls.
struct FieldVisitor {
    out: String,
}

impl FieldVisitor {
    fn push(&mut self, name: &str, value: &str) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        if name != "message" {
            self.out.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.out.push('=');
        }
        self.out.push_str(&printable(value));
    }
}

impl tracing::field::Visit for FieldVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.push(field.name(), value);
        } else {
            self.push(field.name(), &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        // `log` crate metadata duplicates what the line already says.
        if field.name().starts_with("log.") {
            return;
        }
        self.push(field.name(), &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(text: &str) -> bool {
        matches!(printable(text), Cow::Owned(_))
    }

    #[test]
    fn clean_text_is_borrowed_as_it_is() {
        for clean in [
            "",
            "Alice",
            "p3 · WWGV8B",
            "名前のプレイヤー",
            "é (e + U+0301): e\u{301}",
            "🦀 emoji",
            "\\u{1b} written out by hand",
            "{\"type\":\"Error\"}",
        ] {
            assert!(
                matches!(printable(clean), Cow::Borrowed(b) if b == clean),
                "{clean:?}"
            );
        }
    }

    #[test]
    fn every_c0_c1_and_del_character_is_escaped() {
        for code in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
            let c = char::from_u32(code).unwrap_or_default();
            let text = format!("a{c}b");
            assert_eq!(
                printable(&text),
                format!("a\\u{{{code:x}}}b"),
                "U+{code:04X}"
            );
        }
        // Tab and newline included: the result is one line.
        assert_eq!(printable("a\tb\r\nc"), "a\\u{9}b\\u{d}\\u{a}c");
    }

    #[test]
    fn bidi_and_invisible_characters_are_escaped() {
        for c in [
            '\u{061c}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{feff}',
            '\u{fff9}',
            '\u{fffb}',
            '\u{e0001}',
            '\u{e007f}',
        ] {
            let escaped = printable(&format!("x{c}y")).into_owned();
            assert_eq!(escaped, format!("x\\u{{{:x}}}y", u32::from(c)));
            assert!(!escaped.contains(c));
        }
        // What ends the ranges is drawn as it is.
        for c in [
            '\u{2027}',
            '\u{202f}',
            '\u{2065}',
            '\u{206a}',
            '\u{e0080}',
            'ー',
        ] {
            assert!(!owned(&c.to_string()), "{c:?}");
        }
    }

    #[test]
    fn a_title_sequence_becomes_visible_and_findable_text() {
        let hostile = "Eve\u{1b}]2;PWNED-TITLE\u{7}\u{1b}[31mRED\u{1b}[0m";
        let shown = printable(hostile);
        assert_eq!(
            shown,
            "Eve\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED\\u{1b}[0m"
        );
        assert!(!shown.chars().any(is_hidden));
        assert!(shown.contains("PWNED-TITLE"));
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_hidden_characters() {
        let value = serde_json::json!({
            "input": "a\u{1b}]2;x\u{7}\u{7f}\u{9b}2J\u{202e}\u{e0041}\u{200d}名前",
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let shown = printable_json(&text);
        assert!(!shown.chars().any(|c| is_hidden(c) && c != '\n'), "{shown}");
        assert!(
            shown.contains("\\u007f\\u009b2J\\u202e\\udb40\\udc41"),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        assert_eq!(back, value);
        assert!(matches!(printable_json("{\"a\":1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn widths_are_terminal_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("名前"), 4);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(width(""), 0);
    }

    #[test]
    fn clipping_and_fitting_count_columns_not_characters() {
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdefg", 6), "abcde…");
        // A wide character that would cross the edge is left out.
        assert_eq!(clip("名前のプレイヤー", 6), "名前…");
        assert_eq!(clip("a名前のプレイヤー", 6), "a名前…");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(clip("abc", 1), "…");
        // Escaping happens before measuring: what is drawn fits.
        assert_eq!(clip("\u{1b}[2J", 8), "\\u{1b}[…");
        for text in [
            "名前のプレイヤー",
            "e\u{301}e\u{301}e\u{301}",
            "ab\u{1b}cd",
            "🦀🦀🦀x",
        ] {
            for columns in 0..12 {
                let fitted = fit(text, columns);
                assert_eq!(width(&fitted), columns, "{text:?} in {columns}: {fitted:?}");
                assert!(!fitted.chars().any(is_hidden));
            }
        }
    }

    #[test]
    fn log_fields_and_messages_are_escaped_and_the_line_stays_one() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(PrintableFields)
            .with_writer(move || writer.clone())
            .finish();
        let hostile = "Eve\u{1b}]2;PWNED\u{7}\u{202e}\nforged line";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(player = %hostile, quoted = hostile, "kicked {hostile}");
        });
        let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
        let logged = String::from_utf8_lossy(&bytes);
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(
            !logged.trim_end_matches('\n').chars().any(is_hidden),
            "{logged:?}"
        );
        assert!(
            logged.contains("kicked Eve\\u{1b}]2;PWNED\\u{7}\\u{202e}\\u{a}forged line"),
            "{logged}"
        );
        assert!(logged.contains("player=Eve\\u{1b}"), "{logged}");
        assert!(logged.contains(r#"quoted="Eve\u{1b}]2;PWNED"#), "{logged}");
    }
}
