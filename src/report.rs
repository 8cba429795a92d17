//! Plain-terminal rendering of catalog entries and decodings, shared by `decode`, `codes`,
//! `explain` and `replay`. Styles are ANSI; the caller writes through `anstream`, which strips
//! them when stdout is not a terminal or NO_COLOR is set.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value};

use crate::catalog::decode::{DecodeError, Decoding};
use crate::catalog::{Entry, Severity, Source};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const LABEL: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

pub fn severity_style(severity: Severity) -> Style {
    let color = match severity {
        Severity::Info => AnsiColor::Green,
        Severity::Warning => AnsiColor::Yellow,
        Severity::Error => AnsiColor::Red,
    };
    Style::new()
        .fg_color(Some(anstyle::Color::Ansi(color)))
        .bold()
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// The heading line of an entry: `pubsub  channel_not_authorized  error frame · authorization`.
pub fn entry_heading(entry: &Entry) -> String {
    let status = entry
        .status
        .filter(|_| entry.code != entry.status.map(|s| s.to_string()).unwrap_or_default())
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default();
    format!(
        "{} {}{} {}",
        paint(DIM, entry.dialect.id()),
        paint(severity_style(entry.severity()), entry.code),
        status,
        paint(
            DIM,
            &format!(
                "{} · {} · {}",
                entry.delivery.id(),
                entry.category.id(),
                entry.title
            )
        ),
    )
}

fn retry_line(entry: &Entry) -> String {
    let mut line = format!(
        "{} — {}",
        paint(BOLD, entry.retry.id()),
        entry.retry.summary()
    );
    if let Some(window) = entry.window {
        match window.seconds {
            Some(seconds) => {
                let _ = write!(line, " (typically {seconds} s; see {})", window.source);
            }
            None => {
                let _ = write!(line, " (see {})", window.source);
            }
        }
    }
    line
}

/// A decoding, as `relaydeck decode` prints it for a person.
pub fn decoding_text(input: &str, decoding: &Decoding) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", paint(DIM, "input"), one_line(input, 100));
    if let Some(what) = &decoding.not_an_error {
        let _ = writeln!(
            out,
            "  {} {what}",
            paint(severity_style(Severity::Info), "not an error:")
        );
        return out;
    }
    let Some(best) = decoding.best() else {
        return out;
    };
    let _ = writeln!(out, "  {}", entry_heading(best));
    let _ = writeln!(out, "  {} {}", paint(LABEL, "meaning "), best.meaning);
    let _ = writeln!(out, "  {} {}", paint(LABEL, "retry   "), retry_line(best));
    let _ = writeln!(out, "  {} {}", paint(LABEL, "do      "), best.guidance);
    if !decoding.fields.is_empty() {
        let fields: Vec<String> = decoding
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={}", compact(v)))
            .collect();
        let _ = writeln!(out, "  {} {}", paint(LABEL, "fields  "), fields.join("  "));
    }
    if decoding.candidates.len() > 1 {
        let _ = writeln!(out, "  {}", paint(LABEL, "also possible:"));
        for other in &decoding.candidates[1..] {
            let _ = writeln!(
                out,
                "    {} {} — {} ({})",
                paint(DIM, other.dialect.id()),
                other.code,
                other.title,
                other.retry.id()
            );
        }
    }
    out
}

pub fn decode_error_text(input: &str, error: &DecodeError) -> String {
    format!(
        "{} {}\n  {} {error}\n",
        paint(DIM, "input"),
        one_line(input, 100),
        paint(severity_style(Severity::Error), "cannot decode:")
    )
}

/// One JSON object per input for `decode --json`.
pub fn decoding_json(input: &str, result: &Result<Decoding, DecodeError>) -> Value {
    match result {
        Ok(decoding) => {
            let best = decoding.best();
            json!({
                "input": input,
                "status": if decoding.not_an_error.is_some() { "not-an-error" } else { "decoded" },
                "kind": decoding.kind,
                "dialect": decoding.dialect,
                "code": best.map(|e| e.code).or(decoding.code.as_deref()),
                "status_code": best.and_then(|e| e.status),
                "delivery": best.map(|e| e.delivery),
                "category": best.map(|e| e.category),
                "severity": best.map(|e| e.severity()),
                "retry": best.map(|e| e.retry),
                "window": best.and_then(|e| e.window),
                "title": best.map(|e| e.title),
                "meaning": best.map(|e| e.meaning),
                "guidance": best.map(|e| e.guidance),
                "seed": best.and_then(|e| e.seed()),
                "fields": decoding.fields,
                "candidates": decoding.candidates.iter().map(|e| json!({
                    "dialect": e.dialect,
                    "code": e.code,
                    "delivery": e.delivery,
                    "retry": e.retry,
                    "title": e.title,
                })).collect::<Vec<_>>(),
                "not_an_error": decoding.not_an_error,
            })
        }
        Err(error) => json!({
            "input": input,
            "status": "undecodable",
            "error": error.to_string(),
            "dialect": null,
            "code": null,
            "candidates": [],
        }),
    }
}

/// One row of `relaydeck codes`.
pub fn code_row(entry: &Entry) -> String {
    let code = match entry.status {
        Some(status) if entry.code != status.to_string() => format!("{} ({status})", entry.code),
        _ => entry.code.to_owned(),
    };
    format!(
        "{:<12} {} {:<8} {:<22} {}",
        entry.dialect.id(),
        paint(
            severity_style(entry.severity()),
            &format!("{:<34}", one_line(&code, 34))
        ),
        entry.delivery.id(),
        entry.retry.id(),
        entry.title
    )
}

/// `relaydeck explain`: everything the catalog knows about one entry.
pub fn explain_text(entry: &Entry) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", entry_heading(entry));
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", paint(BOLD, entry.title));
    let _ = writeln!(out, "{}", entry.meaning);
    let _ = writeln!(out);
    let _ = writeln!(out, "{} {}", paint(LABEL, "Retry:   "), retry_line(entry));
    let _ = writeln!(out, "{} {}", paint(LABEL, "Do:      "), entry.guidance);
    let _ = writeln!(
        out,
        "{} {}",
        paint(LABEL, "Severity:"),
        paint(
            severity_style(entry.severity()),
            severity_id(entry.severity())
        )
    );
    if !entry.wire_text.is_empty() {
        let what = match entry.delivery {
            crate::catalog::Delivery::Close => "Reason:  ",
            _ => "Message: ",
        };
        let _ = writeln!(out, "{} {}", paint(LABEL, what), entry.wire_text);
    }
    if let Some(status) = entry.status {
        let _ = writeln!(out, "{} {status}", paint(LABEL, "Status:  "));
    }
    if !entry.carriers.is_empty() {
        let _ = writeln!(
            out,
            "{} {}",
            paint(LABEL, "Arrives in:"),
            entry.carriers.join(", ")
        );
    }
    let source = match entry.source {
        Source::Seed(file) => format!("documented in {file}"),
        Source::Upstream(note) => note.to_owned(),
        Source::Rfc6455 => "RFC 6455 §7.4.1 and the IANA WebSocket close code registry".to_owned(),
    };
    let _ = writeln!(out, "{} {source}", paint(LABEL, "Source:  "));
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", paint(BOLD, "Example"));
    let _ = writeln!(out, "    {}", entry.example);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        paint(
            DIM,
            &format!(
                "Decode one like it: relaydeck decode '{}'",
                entry.example.replace('\'', "'\\''")
            )
        )
    );
    out
}

fn severity_id(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info (not an error)",
        Severity::Warning => "warning (the client's request was refused)",
        Severity::Error => "error (a server-side fault)",
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => {
            if s.contains(char::is_whitespace) || s.is_empty() {
                format!("{s:?}")
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    }
}

/// Text from elsewhere (a server's frames, a session file) made safe to print on a terminal:
/// control characters, escape sequences among them, and the invisible characters that reorder
/// or hide text are shown as `\u{…}` escapes instead of being obeyed.
pub fn sanitize(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Collapse whitespace and cut long text, for one-line displays.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        return collapsed;
    }
    let mut cut: String = collapsed
        .chars()
        .take(max_chars.saturating_sub(1))
        .collect();
    cut.push('…');
    cut
}

/// One replayed step, with what was received under it.
pub fn step_text(report: &crate::session::replay::StepReport) -> String {
    use crate::session::replay::Outcome;
    let mut out = String::new();
    match &report.outcome {
        Outcome::Passed(lines) => {
            let _ = writeln!(
                out,
                "  {} {:>2} {}",
                paint(severity_style(Severity::Info), "✓"),
                report.number,
                sanitize(&report.description)
            );
            for line in lines {
                let _ = writeln!(out, "         {}", paint(DIM, &sanitize(line)));
            }
        }
        Outcome::Mismatch { expected, received } => {
            let _ = writeln!(
                out,
                "  {} {:>2} {}",
                paint(severity_style(Severity::Error), "✗"),
                report.number,
                sanitize(&report.description)
            );
            let _ = writeln!(
                out,
                "       {} {}",
                paint(severity_style(Severity::Info), "- expected:"),
                sanitize(expected)
            );
            for (index, line) in received.iter().enumerate() {
                let label = if index == 0 {
                    "+ received:"
                } else {
                    "           "
                };
                let _ = writeln!(
                    out,
                    "       {} {}",
                    paint(severity_style(Severity::Error), label),
                    sanitize(line)
                );
            }
        }
        Outcome::Failed(message) => {
            let _ = writeln!(
                out,
                "  {} {:>2} {}",
                paint(severity_style(Severity::Error), "!"),
                report.number,
                sanitize(&report.description)
            );
            let _ = writeln!(
                out,
                "       {} {}",
                paint(severity_style(Severity::Error), "could not run:"),
                sanitize(message)
            );
        }
    }
    out
}
