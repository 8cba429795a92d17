//! The hub's typed parts: plain data behind the hub's lock, each recording its admin deltas in
//! the [`journal::Journal`] it is handed (which lives under that lock, so a change and its delta
//! cannot come apart). A part knows neither the hub nor the other parts, except that a peer's
//! entry names its channels and an error is kept on its peer's entry.
//!
//! The hub's methods for each part are in the file of the same name beside `hub/mod.rs`.

pub(super) mod apps;
pub(super) mod channels;
pub(super) mod errors;
pub(super) mod faults;
pub(super) mod history;
pub(super) mod journal;
pub(super) mod probes;
pub(super) mod registry;
pub(super) mod rooms;
pub(super) mod subscriptions;
