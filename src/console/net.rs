//! The admin connection: connect, forward every server message to the app, send the app's
//! commands, and on loss reconnect with exponential backoff and jitter. A fresh snapshot on
//! each reconnect resynchronises the views.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::app::{Connection, Msg};
use crate::protocol::admin::{CommandEnvelope, ServerMessage};

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Run until `commands` is closed (the console quit).
pub async fn run(
    url: String,
    token: String,
    events: mpsc::UnboundedSender<Msg>,
    mut commands: mpsc::UnboundedReceiver<CommandEnvelope>,
) {
    let mut attempt: u32 = 0;
    loop {
        let error = match session(&url, &token, &events, &mut commands).await {
            Ok(()) => return,
            Err(error) => error,
        };
        attempt += 1;
        let base = BACKOFF_START
            .saturating_mul(1 << attempt.min(6))
            .min(BACKOFF_MAX);
        let jitter = {
            use rand::RngExt as _;
            rand::rng().random_range(0..=base.as_millis() as u64 / 4)
        };
        let wait = base + Duration::from_millis(jitter);
        if events
            .send(Msg::Connection(Connection::Lost {
                error,
                retry_in_ms: wait.as_millis() as u64,
                attempt,
            }))
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            closed = commands.recv() => if closed.is_none() { return },
        }
    }
}

/// One connection; `Ok` when the console quit, `Err` with the reason when the link broke.
async fn session(
    url: &str,
    token: &str,
    events: &mpsc::UnboundedSender<Msg>,
    commands: &mut mpsc::UnboundedReceiver<CommandEnvelope>,
) -> Result<(), String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the admin token is not a valid header value".to_owned())?;
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Err(_) => return Err("timed out connecting".to_owned()),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
            if response.status() == 401 =>
        {
            return Err("the server refused the admin token (HTTP 401)".to_owned())
        }
        Ok(Err(error)) => return Err(error.to_string()),
        Ok(Ok(connected)) => connected,
    };
    let _ = events.send(Msg::Connection(Connection::Connected));
    loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(message) => {
                        if events.send(Msg::Server(message)).is_err() {
                            return Ok(());
                        }
                    }
                    Err(error) => tracing::warn!(%error, "ignoring an admin message this console does not understand"),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(frame) => format!("the server closed the connection: {} {}", u16::from(frame.code), frame.reason),
                        None => "the server closed the connection".to_owned(),
                    })
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("the connection ended".to_owned()),
            },
            command = commands.recv() => match command {
                Some(envelope) => {
                    let text = serde_json::to_string(&envelope).unwrap_or_default();
                    socket.send(Message::Text(text.into())).await.map_err(|e| e.to_string())?;
                }
                None => {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
            },
        }
    }
}
