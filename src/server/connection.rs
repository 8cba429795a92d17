//! What every dialect's connection does the same way: a writer task that drains the peer's
//! outbox into the socket, and a reader that yields the client's frames.
//!
//! The writer owns the sink, so a client that stops reading only ever blocks its own writer:
//! its outbox fills, the hub marks it a slow consumer and the abort signal makes the writer
//! give up on the stalled send and close.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::server::hub::Outbound;

/// How long one frame may take to go out before the connection is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the connection task waits for its writer to flush a final close.
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub fn split(socket: WebSocket) -> (SplitSink<WebSocket, Message>, SplitStream<WebSocket>) {
    socket.split()
}

pub fn spawn_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Outbound>,
    mut abort: watch::Receiver<Option<(u16, String)>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                biased;
                (code, reason) = abort_requested(&mut abort) => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_message(code, &reason))).await;
                    break;
                }
                next = outbox.recv() => next,
            };
            match next {
                Some(Outbound::Text(text)) => {
                    let sent = tokio::select! {
                        biased;
                        (code, reason) = abort_requested(&mut abort) => {
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_message(code, &reason))).await;
                            break;
                        }
                        sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(text))) => sent,
                    };
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = tokio::time::timeout(
                        WRITE_TIMEOUT,
                        sink.send(close_message(code, &reason)),
                    )
                    .await;
                    break;
                }
                None => break,
            }
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
    })
}

/// Resolves when an immediate close is requested. The hub drops the sender when it forgets
/// the peer; from then on only the outbox matters (it is drained to the end, which is how a
/// final queued close goes out), so this never resolves.
async fn abort_requested(abort: &mut watch::Receiver<Option<(u16, String)>>) -> (u16, String) {
    loop {
        if let Some(close) = abort.borrow_and_update().clone() {
            return close;
        }
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

pub fn close_message(code: u16, reason: &str) -> Message {
    // Close reasons are limited to 123 bytes by RFC 6455; cut on a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    }))
}

/// A frame from the client, reduced to what handlers care about.
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// The client closed (with its code and reason, if it gave them).
    Closed(Option<(u16, String)>),
    /// The socket failed or ended without a close frame.
    Dropped,
}

pub async fn next_incoming(stream: &mut SplitStream<WebSocket>) -> Incoming {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Incoming::Text(text.as_str().to_owned()),
            Some(Ok(Message::Binary(bytes))) => return Incoming::Binary(bytes.to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return Incoming::Closed(frame.map(|f| (f.code, f.reason.as_str().to_owned())))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Err(_)) | None => return Incoming::Dropped,
        }
    }
}

/// Wait (bounded) for the writer to send what is queued, including a final close.
pub async fn finish_writer(writer: JoinHandle<()>) {
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}
