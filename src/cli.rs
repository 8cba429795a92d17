//! The command line: parse, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "relaydeck", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or search the catalog of documented codes.
    Codes {
        /// Words to search for in codes, titles, meanings and guidance.
        query: Vec<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Codes { query }) => {
            for entry in crate::catalog::search(&query.join(" ")) {
                println!("{:<12} {:<40} {}", entry.dialect, entry.code, entry.title);
            }
            ExitCode::SUCCESS
        }
        None => ExitCode::SUCCESS,
    }
}
