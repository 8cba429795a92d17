//! Plain-terminal rendering of catalog entries and decodings, shared by `decode`, `codes`,
//! `explain` and `replay`. Styles are ANSI; the caller writes through `anstream`, which strips
//! them when stdout is not a terminal or NO_COLOR is set.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value};

use crate::catalog::decode::{DecodeError, Decoding};
use crate::catalog::{Entry, Severity, Source};
use crate::text::{one_line, printable};

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

/// A pasted log's timeline, as `relaydeck decode --timeline` prints it: one line per error or
/// close (when, where in the log, what it is, whether to retry), its correlation fields, and
/// a summary of the values to look for among live and historic peers.
pub fn timeline_text(timeline: &crate::catalog::timeline::Timeline) -> String {
    let mut text = String::new();
    if timeline.events.is_empty() {
        let _ = writeln!(
            text,
            "no catalogued error or close in {} lines",
            timeline.lines
        );
    }
    for event in &timeline.events {
        let Some(entry) = event.decoding.best() else {
            continue;
        };
        let at = event.at.as_deref().unwrap_or("—");
        let _ = writeln!(
            text,
            "{} {}  {}",
            paint(DIM, &format!("line {:>4}", event.line)),
            paint(BOLD, &printable(at)),
            entry_heading(entry)
        );
        let _ = writeln!(text, "          {}", entry.meaning);
        let _ = writeln!(text, "          retry: {}", retry_line(entry));
        if !event.correlation.is_empty() {
            let fields: Vec<String> = event
                .correlation
                .iter()
                .map(|(name, value)| format!("{name} {}", printable(value)))
                .collect();
            let _ = writeln!(text, "          {}", paint(DIM, &fields.join(" · ")));
        }
    }
    let values = timeline.correlation_values();
    if !values.is_empty() {
        let _ = writeln!(text, "\nto look for among live and historic peers:");
        for (name, list) in values {
            let list: Vec<String> = list.iter().map(|v| printable(v).into_owned()).collect();
            let _ = writeln!(text, "  {name}: {}", list.join(", "));
        }
    }
    if timeline.truncated {
        let _ = writeln!(
            text,
            "(only the first {} MiB of the log were read)",
            crate::catalog::timeline::MAX_LOG_BYTES >> 20
        );
    }
    text
}

/// A decoding, as `relaydeck decode` prints it for a person.
pub fn decoding_text(input: &str, decoding: &Decoding) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        paint(DIM, "input"),
        printable(&one_line(input, 100))
    );
    if let Some(what) = &decoding.not_an_error {
        let _ = writeln!(
            out,
            "  {} {}",
            paint(severity_style(Severity::Info), "not an error:"),
            printable(what)
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
        "{} {}\n  {} {}\n",
        paint(DIM, "input"),
        printable(&one_line(input, 100)),
        paint(severity_style(Severity::Error), "cannot decode:"),
        printable(&error.to_string())
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
                printable(s).into_owned()
            }
        }
        other => other.to_string(),
    }
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
                printable(&report.description)
            );
            for line in lines {
                let _ = writeln!(out, "         {}", paint(DIM, &printable(line)));
            }
        }
        Outcome::Mismatch { expected, received } => {
            let _ = writeln!(
                out,
                "  {} {:>2} {}",
                paint(severity_style(Severity::Error), "✗"),
                report.number,
                printable(&report.description)
            );
            let _ = writeln!(
                out,
                "       {} {}",
                paint(severity_style(Severity::Info), "- expected:"),
                printable(expected)
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
                    printable(line)
                );
            }
        }
        Outcome::Failed(message) => {
            let _ = writeln!(
                out,
                "  {} {:>2} {}",
                paint(severity_style(Severity::Error), "!"),
                report.number,
                printable(&report.description)
            );
            let _ = writeln!(
                out,
                "       {} {}",
                paint(severity_style(Severity::Error), "could not run:"),
                printable(message)
            );
        }
    }
    out
}
