//! Wrapping styled lines to a width in terminal columns.
//!
//! ratatui 0.29's own wrapping can place a wide character (CJK, emoji) in the last column of
//! its area, so that its second half lands on the block's border and a player's name breaks
//! the frame around it. Lines wrapped here never exceed `width` columns: words move to the
//! next row whole when they fit in one, and are cut between characters when they do not.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::text::char_width;

/// `lines` wrapped to at most `width` columns each. With `trim`, spaces at the start of a
/// continuation row are dropped.
pub fn wrap(lines: Vec<Line<'_>>, width: usize, trim: bool) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut out = Vec::new();
    for line in lines {
        let mut rows = Rows::new(width, line.style, trim);
        for (word, style) in words(&line) {
            rows.push_word(&word, style);
        }
        out.extend(rows.finish().into_iter().map(|mut row| {
            row.alignment = line.alignment;
            row
        }));
    }
    out
}

/// A line's words, each with its trailing spaces, cut where the style changes too.
fn words(line: &Line<'_>) -> Vec<(String, Style)> {
    let mut words = Vec::new();
    for span in &line.spans {
        let style = line.style.patch(span.style);
        let mut word = String::new();
        let mut in_spaces = false;
        for c in span.content.chars() {
            if c != ' ' && in_spaces {
                words.push((std::mem::take(&mut word), style));
                in_spaces = false;
            }
            in_spaces |= c == ' ';
            word.push(c);
        }
        if !word.is_empty() {
            words.push((word, style));
        }
    }
    words
}

struct Rows {
    width: usize,
    style: Style,
    trim: bool,
    done: Vec<Line<'static>>,
    spans: Vec<Span<'static>>,
    used: usize,
}

impl Rows {
    fn new(width: usize, style: Style, trim: bool) -> Rows {
        Rows {
            width,
            style,
            trim,
            done: Vec::new(),
            spans: Vec::new(),
            used: 0,
        }
    }

    fn push_word(&mut self, word: &str, style: Style) {
        let visible = word.trim_end_matches(' ');
        let visible_width: usize = visible.chars().map(char_width).sum();
        if self.used > 0 && self.used + visible_width > self.width && visible_width <= self.width {
            self.break_row();
        }
        for c in word.chars() {
            let columns = char_width(c);
            if self.used + columns > self.width {
                if c == ' ' {
                    // Spaces that do not fit end the row; they are not carried over.
                    continue;
                }
                self.break_row();
            }
            if c == ' ' && self.used == 0 && self.trim && !self.done.is_empty() {
                continue;
            }
            self.push_char(c, style, columns);
        }
    }

    fn push_char(&mut self, c: char, style: Style, columns: usize) {
        match self.spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push(c),
            _ => self.spans.push(Span::styled(c.to_string(), style)),
        }
        self.used += columns;
    }

    fn break_row(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        // A row ends at its last word, not at the spaces after it.
        while let Some(last) = spans.last_mut() {
            let kept = last.content.trim_end_matches(' ').len();
            if kept > 0 {
                last.content.to_mut().truncate(kept);
                break;
            }
            spans.pop();
        }
        self.done.push(Line::from(spans).style(self.style));
        self.used = 0;
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        if !self.spans.is_empty() || self.done.is_empty() {
            self.break_row();
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::width;

    fn texts(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn words_move_whole_and_long_ones_are_cut() {
        let wrapped = wrap(vec![Line::from("close peer p3 now")], 10, true);
        assert_eq!(texts(&wrapped), ["close peer", "p3 now"]);
        let wrapped = wrap(vec![Line::from("abcdefghijklmnop")], 6, true);
        assert_eq!(texts(&wrapped), ["abcdef", "ghijkl", "mnop"]);
    }

    #[test]
    fn a_wide_character_never_takes_the_last_column_half_way() {
        let question = "app \\u{1b}[5Aa-a0AAe\u{301}0_, 名前のプレイヤー , 127.0.0.1:50003) with";
        for columns in 4..40 {
            for row in wrap(vec![Line::from(question)], columns, true) {
                assert!(
                    width(&row.to_string()) <= columns,
                    "{columns}: {:?}",
                    row.to_string()
                );
            }
        }
    }

    #[test]
    fn styles_survive_the_wrap() {
        let bold = Style::default().add_modifier(ratatui::style::Modifier::BOLD);
        let wrapped = wrap(
            vec![Line::from(vec![
                Span::styled("Do: ", bold),
                Span::raw("retry later"),
            ])],
            8,
            true,
        );
        assert_eq!(texts(&wrapped), ["Do:", "retry", "later"]);
        assert_eq!(wrapped[0].spans[0].style, bold);
        assert_eq!(wrapped[1].spans[0].style, Style::default());
    }

    #[test]
    fn an_empty_line_stays_a_line() {
        assert_eq!(texts(&wrap(vec![Line::from("")], 10, false)), [""]);
    }
}
