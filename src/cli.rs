//! The command line: parse, dispatch, map failures to exit codes.
//!
//! Exit status: 0 on success, 1 when an input could not be decoded or a command failed,
//! 2 for usage errors (clap's own).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::catalog::{self, decode, Dialect};
use crate::report;

#[derive(Debug, Parser)]
#[command(name = "relaydeck", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode pasted error frames, close codes and HTTP statuses (arguments, or one per line on stdin).
    Decode(DecodeArgs),
    /// List the catalog of documented codes, or search it.
    Codes(CodesArgs),
    /// Print everything known about one code, with an example.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Inputs: a JSON frame, `close 4020 admin_disconnect`, `429 Retry-After: 60`, `ROOM_FULL`.
    /// Without any, one input per line is read from stdin.
    pub inputs: Vec<String>,
    /// Only consider codes of this dialect (signal-fish, talo, talo-http, flow, pubsub, websocket).
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// One JSON object per input instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CodesArgs {
    /// Words that every listed entry must contain (code, title, meaning, guidance, policy…).
    pub query: Vec<String>,
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// The full entries as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A code, optionally qualified by dialect: `ROOM_FULL`, `pubsub:4020`, `429`,
    /// `"subscription not found"`.
    pub code: String,
    #[arg(long)]
    pub dialect: Option<Dialect>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Decode(args)) => run_decode(args),
        Some(Command::Codes(args)) => run_codes(args),
        Some(Command::Explain(args)) => run_explain(args),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(anstream::stderr(), "relaydeck: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_decode(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    let inputs: Vec<String> = if args.inputs.is_empty() {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        lines
    } else {
        args.inputs
    };
    if inputs.is_empty() {
        anyhow::bail!("nothing to decode: pass inputs as arguments or one per line on stdin");
    }
    let mut out = anstream::stdout().lock();
    let mut all_decoded = true;
    for input in &inputs {
        let result = decode::decode(input, args.dialect);
        all_decoded &= result.is_ok();
        if args.json {
            writeln!(out, "{}", report::decoding_json(input, &result))?;
        } else {
            match &result {
                Ok(decoding) => write!(out, "{}", report::decoding_text(input, decoding))?,
                Err(error) => write!(out, "{}", report::decode_error_text(input, error))?,
            }
        }
    }
    Ok(if all_decoded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_codes(args: CodesArgs) -> anyhow::Result<ExitCode> {
    let entries: Vec<&catalog::Entry> = catalog::search(&args.query.join(" "))
        .into_iter()
        .filter(|e| args.dialect.is_none_or(|d| e.dialect == d))
        .collect();
    let mut out = anstream::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        writeln!(
            anstream::stderr(),
            "no catalog entry matches {:?}",
            args.query.join(" ")
        )?;
        return Ok(ExitCode::FAILURE);
    }
    for entry in &entries {
        writeln!(out, "{}", report::code_row(entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let matches = find_for_explain(&args.code, args.dialect);
    if matches.is_empty() {
        let suggestions: Vec<String> = catalog::search(&args.code)
            .into_iter()
            .take(5)
            .map(|e| e.qualified())
            .collect();
        let mut message = format!("no catalog entry for {:?}", args.code);
        if !suggestions.is_empty() {
            message.push_str(&format!("; did you mean: {}", suggestions.join(", ")));
        }
        anyhow::bail!(message);
    }
    let mut out = anstream::stdout().lock();
    for (index, entry) in matches.iter().enumerate() {
        if index > 0 {
            writeln!(out, "{}", "─".repeat(72))?;
        }
        write!(out, "{}", report::explain_text(entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A code as a person types it: bare, `dialect:code`, or anything `decode` understands.
fn find_for_explain(query: &str, dialect: Option<Dialect>) -> Vec<&'static catalog::Entry> {
    let query = query.trim();
    let mut found = match query
        .split_once(':')
        .map(|(d, c)| (d.parse::<Dialect>(), c))
    {
        Some((Ok(d), code)) => catalog::get(d, code.trim()).into_iter().collect(),
        _ => catalog::by_code(query),
    };
    if found.is_empty() {
        if let Ok(decoding) = decode::decode(query, None) {
            found = decoding.candidates;
        }
    }
    found.retain(|e| dialect.is_none_or(|d| e.dialect == d));
    found
}
