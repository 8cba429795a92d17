//! Demo traffic for the embedded server: simulated clients over real sockets, so that every
//! view of the console has something live in it. Gentle and bounded: a few frames a second.

pub mod flow;
pub mod pubsub;
pub mod signal_fish;
pub mod talo;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use crate::catalog::{Entry, Retry};

/// Run every dialect's simulation until `stop` becomes true.
pub async fn run_all(addr: SocketAddr, stop: watch::Receiver<bool>) {
    tokio::join!(
        pubsub::simulate(addr, stop.clone()),
        signal_fish::simulate(addr, stop.clone()),
        talo::simulate(addr, stop.clone()),
        flow::simulate(addr, stop),
    );
}

/// Open a demo client's connection to `path` on the server at `addr`; `None` when the server
/// refuses or does not answer within a few seconds (the simulations then try again later).
async fn dial(addr: SocketAddr, path: &str) -> Option<crate::wsclient::Socket> {
    let mut request = crate::wsclient::Request::new(crate::protocol::routes::ws_url(addr, path));
    if path == crate::protocol::routes::FLOW {
        // Flow streams need a credential: the demo app's secret key, which shows that app's
        // data only.
        request = request.header("authorization", "Bearer sk_demo");
    }
    request
        .timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .ok()
        .map(|client| client.socket)
}

/// A simulated client's refusals in a row, and the wait its catalog entry's retry policy asks
/// for before the next attempt: a suspended app's clients check back a few times a minute
/// rather than flooding the server, and every console's history, with the same refusal.
#[derive(Debug, Default)]
struct Refusals {
    in_a_row: u32,
}

impl Refusals {
    /// The client was refused (with `entry`, when the refusal is a documented code): how long
    /// to wait before trying again.
    fn refused(&mut self, entry: Option<&Entry>) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        let retry = entry.map_or(Retry::Backoff, |e| e.retry);
        // Told never to retry, a demo client still looks in once a minute: an operator who
        // fixes what refused it expects the traffic back.
        retry
            .wait_before_retry(self.in_a_row, None)
            .unwrap_or(Duration::from_secs(60))
    }

    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }
}
