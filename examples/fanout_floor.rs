//! The floor under a relayed delivery: the least a server on relaydeck's own stack can spend
//! per delivery, to tell the cost of what relaydeck does (rooms, limits, the flight recorder,
//! counters, the dialect's parsing and framing) from the cost of the stack it stands on.
//!
//! It keeps what every delivery needs and nothing else: axum's WebSocket with relaydeck's
//! socket settings (`TCP_NODELAY`, 4 KiB read and 16 KiB write buffers), one unbounded outbox
//! and one writer task per connection that gathers for one pass of the runtime and writes a
//! batch with one flush, as `serve` does. It answers just enough Signal Fish for
//! `relaydeck load rooms` to seat its players (`Authenticate`, `JoinRoom` by code) and relays
//! each `GameData` frame to the room's other players as it came, without a `from_player`,
//! a sequence number, a recording, a rate limit or a count. Not a server to run: a
//! measurement.
//!
//! ```text
//! cargo build --release --example fanout_floor
//! scripts/perf-ab.sh relaydeck=target/release/relaydeck floor=target/release/examples/fanout_floor
//! ```
//!
//! It takes the arguments `perf-ab.sh` gives a server (`serve --listen ADDRESS --config FILE
//! …`) and reads only the address and the config's `runtime.worker_threads`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

// As `serve`'s (`src/server/connection.rs`).
const WRITE_BATCH: usize = 64;
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

type Outbox = mpsc::UnboundedSender<Utf8Bytes>;
/// A room's members' outboxes, by connection number.
type Room = Arc<Mutex<Vec<(u64, Outbox)>>>;

/// Rooms by code.
#[derive(Default)]
struct Rooms {
    next_code: AtomicU64,
    next_connection: AtomicU64,
    by_code: Mutex<HashMap<String, Room>>,
}

impl Rooms {
    fn room(&self, code: &str) -> Option<Room> {
        lock(&self.by_code).get(code).cloned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let argument = |name: &str| {
        args.windows(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].clone())
    };
    let listen = argument("--listen").unwrap_or_else(|| "127.0.0.1:17951".to_owned());
    // The one setting of `serve`'s config it honours: `runtime.worker_threads`.
    let threads = match argument("--config") {
        Some(path) => serde_json::from_str::<Value>(&std::fs::read_to_string(path)?)?["runtime"]
            ["worker_threads"]
            .as_u64(),
        None => None,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        runtime.worker_threads(usize::try_from(threads)?.max(1));
    }
    runtime.enable_all().build()?.block_on(serve(listen))
}

async fn serve(listen: String) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route("/v2/ws", get(upgrade))
        .with_state(Arc::new(Rooms::default()));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(State(rooms): State<Arc<Rooms>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(socket, rooms))
}

async fn connection(socket: WebSocket, rooms: Arc<Rooms>) {
    let (sink, mut stream) = socket.split();
    let (outbox, queue) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write(sink, queue));
    let me = rooms.next_connection.fetch_add(1, Ordering::Relaxed);
    let mut room: Option<Room> = None;
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if text.as_str().starts_with(r#"{"type":"GameData""#) {
            if let Some(room) = &room {
                for (member, their_outbox) in lock(room).iter() {
                    if *member != me {
                        let _ = their_outbox.send(text.clone());
                    }
                }
            }
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let answer = match frame["type"].as_str() {
            Some("Authenticate") => r#"{"type":"Authenticated","data":{}}"#.to_owned(),
            Some("JoinRoom") => {
                let code = match frame["data"]["room_code"].as_str() {
                    Some(code) => code.to_owned(),
                    None => {
                        let code = rooms.next_code.fetch_add(1, Ordering::Relaxed).to_string();
                        lock(&rooms.by_code).insert(code.clone(), Arc::default());
                        code
                    }
                };
                let Some(joined) = rooms.room(&code) else {
                    continue;
                };
                lock(&joined).push((me, outbox.clone()));
                room = Some(joined);
                serde_json::json!({"type": "RoomJoined", "data": {"room_code": code}}).to_string()
            }
            _ => continue,
        };
        let _ = outbox.send(answer.into());
    }
    if let Some(room) = room {
        lock(&room).retain(|(member, _)| *member != me);
    }
    drop(outbox);
    let _ = writer.await;
}

async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::UnboundedReceiver<Utf8Bytes>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        tokio::task::yield_now().await;
        while batch.len() < WRITE_BATCH {
            let Ok(frame) = queue.try_recv() else {
                break;
            };
            batch.push(frame);
        }
        for frame in batch.drain(..) {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
