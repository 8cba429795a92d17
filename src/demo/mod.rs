//! Demo traffic for the embedded server: simulated clients over real sockets, so that every
//! view of the console has something live in it. Gentle and bounded: a few frames a second.

pub mod flow;
pub mod pubsub;
pub mod signal_fish;
pub mod talo;

use std::net::SocketAddr;

use tokio::sync::watch;

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
