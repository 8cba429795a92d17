//! The catalog's tables, one file per dialect. Order within a file follows the dialect's own
//! documentation, so `relaydeck codes` reads like the page it came from.

use super::{Category, Delivery, Dialect, Entry, Retry, Source, Window};

pub(crate) mod flow;
mod pubsub;
mod signal_fish;
mod talo;
mod talo_http;
mod websocket;

/// In [`Dialect::ALL`] order.
pub(super) static TABLES: [&[Entry]; 6] = [
    signal_fish::ENTRIES,
    talo::ENTRIES,
    talo_http::ENTRIES,
    flow::ENTRIES,
    pubsub::ENTRIES,
    websocket::ENTRIES,
];
