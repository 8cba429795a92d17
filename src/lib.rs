//! relaydeck: a terminal admin and debugging console for realtime WebSocket backends, bundled
//! with a server that speaks the wire dialects of Signal Fish, Talo, Flow streams and a pub/sub
//! relay.
//!
//! # Layout
//! - [`catalog`]: every documented error and close code as data, and the decoder. No I/O.
//! - [`protocol`]: serde wire types; [`protocol::admin`] is the console ⇄ server contract;
//!   [`protocol::routes`] names every path once.
//! - [`wsclient`]: the one WebSocket client (console link, composer, replay, probes).
//! - [`clock`]: wall-clock milliseconds, shared by server and clients.
//! - [`console`]: the TUI, a client of the server's admin endpoint.
//! - [`demo`]: simulated clients that keep the embedded server's views alive.
//! - [`server`]: the bundled server: hub, dialect handlers, admin endpoint, persistence.
//! - [`report`]: plain-terminal rendering of entries and decodings (decode, codes, explain).
//! - [`session`]: session files (JSONL) and the replay engine shared by `replay` and the console.
//! - [`bench`](mod@bench): the console's cost at 1k, 10k and 100k peers, side by side.
//! - [`load`]: a load generator for the server (or any Signal Fish or pub/sub server).
//! - [`cli`]: the command line (clap derive) and the subcommands' output.
//! - [`text`]: untrusted text made safe to draw on a terminal, and measured as one shows it.
//! - [`tls`]: rustls for the server (reloadable certificate) and every client (`--ca-file`).
//!
//! The module maps name the server's internal parts, which are `pub(crate)`: read them with
//! `cargo doc --document-private-items`, where every such link resolves.

#![allow(rustdoc::private_intra_doc_links)]

pub mod admin_token;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod console;
pub mod demo;
pub mod load;
pub mod protocol;
pub mod proxy;
pub mod report;
pub mod server;
pub mod session;
pub mod text;
pub mod tls;
pub mod wsclient;
