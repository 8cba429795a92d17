//! Wire types, one module per dialect, plus the admin protocol and the route paths. No I/O.

pub mod admin;
pub mod flow;
pub mod game_data;
pub mod json;
pub mod path_fault;
pub mod pubsub;
pub mod routes;
pub mod signal_fish;
pub mod talo;
