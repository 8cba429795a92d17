//! What a detail shows in place of its view's table: one object, by its key.

use crate::catalog::Dialect;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Peer(String),
    Room(String),
    Channel(Dialect, String, String),
    Code(String),
    /// A closed peer or room, by its history key.
    History(String),
    /// One log entry in full, by its number, and the detail it was opened from.
    Entry {
        number: u64,
        from: Option<Box<Detail>>,
    },
    /// The frames the flight recorder kept for a peer ([`super::app::App::recorded`]), and the detail
    /// they were opened from.
    Frames {
        from: Option<Box<Detail>>,
    },
}
