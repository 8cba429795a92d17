//! Probe connections: real WebSocket clients the server opens against itself when an admin
//! injects a frame "through a new connection". The server recognises its own probe by a nonce
//! header, marks that peer `probe` and taps it, so every frame the probe receives shows in the
//! consoles as the server's answer.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::catalog::Dialect;
pub use crate::protocol::routes::dialect_path;
use crate::protocol::routes::ws_url;
use crate::server::{Shared, PROBE_HEADER};
use crate::wsclient::{ConnectError, Request};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Open a probe of `dialect` with the connection query `query`; returns its peer id once the
/// server has registered it.
pub async fn open(shared: &Arc<Shared>, dialect: Dialect, query: &str) -> Result<String, String> {
    let path = dialect_path(dialect)?;
    let query = query.trim_start_matches('?');
    let path = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    // A server behind TLS answers only TLS, on its own address too; the probe trusts exactly
    // the certificate the server presents.
    let (url, tls) = match &shared.tls {
        Some(tls) => (
            format!("wss://{}{path}", shared.loopback),
            Some(tls.pinned_client()?),
        ),
        None => (ws_url(shared.loopback, &path), None),
    };
    let nonce: String = {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let registered = shared.hub.expect_probe(nonce.clone());
    let mut request = Request::new(url.as_str()).header(PROBE_HEADER, nonce.as_str());
    if dialect == Dialect::Flow {
        // Flow streams need a credential; the server's own probe acts with its admin's.
        request = request.header("authorization", format!("Bearer {}", shared.admin_token));
    }
    if let Some(tls) = tls {
        request = request.tls(tls);
    }
    let connected = request.timeout(CONNECT_TIMEOUT).connect().await;
    let mut socket = match connected {
        Ok(client) => client.socket,
        Err(ConnectError::TimedOut(_)) => {
            shared.hub.forget_probe_nonce(&nonce);
            return Err(format!("the probe timed out connecting to {url}"));
        }
        Err(error) => {
            shared.hub.forget_probe_nonce(&nonce);
            return Err(format!("the probe could not connect to {url}: {error}"));
        }
    };
    // Either the server registers the probe as a peer, or it refuses the connection with a
    // close frame (a bad key, a suspended app): report which.
    let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    tokio::pin!(registered);
    let peer = loop {
        tokio::select! {
            peer = &mut registered => {
                break peer.map_err(|_| "the server dropped the probe before registering it".to_owned());
            }
            incoming = socket.next() => match incoming {
                // A greeting can arrive before the registration is seen here; the tap shows it.
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(Some(frame)))) => {
                    shared.hub.forget_probe_nonce(&nonce);
                    break Err(format!("the server refused the probe: close {} {}", u16::from(frame.code), frame.reason));
                }
                _ => {
                    shared.hub.forget_probe_nonce(&nonce);
                    break Err("the server closed the probe before registering it".to_owned());
                }
            },
            _ = &mut deadline => {
                shared.hub.forget_probe_nonce(&nonce);
                break Err("the server never registered the probe".to_owned());
            }
        }
    }?;
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel::<String>();
    shared.hub.register_probe_sender(&peer, frames_tx);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = frames_rx.recv() => match frame {
                    Some(frame) => {
                        if socket.send(Message::Text(frame.into())).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                // What the server sends reaches the consoles through the tap; the probe only
                // has to keep reading so that it never becomes a slow consumer.
                incoming = socket.next() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = socket.close(None).await;
    });
    Ok(peer)
}
