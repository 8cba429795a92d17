//! Demo traffic for the embedded server: simulated clients over real sockets, so that every
//! view of the console has something live in it. Gentle and bounded: a few frames a second.

pub mod pubsub;

use std::net::SocketAddr;

use tokio::sync::watch;

/// Run every dialect's simulation until `stop` becomes true.
pub async fn run_all(addr: SocketAddr, stop: watch::Receiver<bool>) {
    pubsub::simulate(addr, stop).await;
}
