//! Unfinished frames over raw sockets: what sockets that start a large frame and never finish
//! it can make the server hold (`src/server/frames.rs`). The frames are written by hand, so a
//! socket can stop one byte short of a frame's end, which no WebSocket library does.
//!
//! Every test here takes `MEMORY`: one of them measures this process's memory, in which the
//! server runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// The header of a client frame with `length` payload bytes, masked with a zero key (so the
/// payload goes as it is).
fn header(opcode: u8, fin: bool, length: usize) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 | opcode } else { opcode }];
    if length < 126 {
        out.push(0x80 | length as u8);
    } else if length <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(length as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(opcode, true, payload.len());
    out.extend_from_slice(payload);
    out
}

/// A raw WebSocket: upgraded by hand, frames read as the server sends them (unmasked).
struct Raw {
    read: tokio::net::tcp::OwnedReadHalf,
    write: Option<tokio::net::tcp::OwnedWriteHalf>,
    buffer: Vec<u8>,
}

impl Raw {
    async fn open(addr: SocketAddr, path: &str) -> Raw {
        let stream = tokio::time::timeout(RECEIVE_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .unwrap();
        let (read, write) = stream.into_split();
        let mut raw = Raw {
            read,
            write: Some(write),
            buffer: Vec::new(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        raw.send(request.as_bytes()).await;
        let end = loop {
            if let Some(at) = raw.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            raw.fill().await;
        };
        let head = String::from_utf8_lossy(&raw.buffer[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw.buffer.drain(..end);
        raw
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout(RECEIVE_TIMEOUT, self.read.read(&mut chunk))
            .await
            .expect("nothing arrived before the timeout")
            .unwrap();
        assert!(
            read > 0,
            "the server closed the socket without a close frame"
        );
        self.buffer.extend_from_slice(&chunk[..read]);
    }

    /// The next whole frame from the server: opcode and payload.
    async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buffer.len() >= 2 {
                let opcode = self.buffer[0] & 0x0f;
                let (length, at) = match self.buffer[1] & 0x7f {
                    126 if self.buffer.len() >= 4 => (
                        u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize,
                        4,
                    ),
                    127 if self.buffer.len() >= 10 => (
                        u64::from_be_bytes(self.buffer[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    short => (short as usize, 2),
                };
                if length != usize::MAX && self.buffer.len() >= at + length {
                    let payload = self.buffer[at..at + length].to_vec();
                    self.buffer.drain(..at + length);
                    return (opcode, payload);
                }
            }
            self.fill().await;
        }
    }

    /// Skip frames until a close; its code.
    async fn close_code(&mut self) -> u16 {
        for _ in 0..100 {
            let (opcode, payload) = self.next().await;
            if opcode == OP_CLOSE {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
        panic!("no close among the first 100 frames");
    }

    /// The next text frame, as JSON.
    async fn text(&mut self) -> serde_json::Value {
        for _ in 0..100 {
            let (opcode, payload) = self.next().await;
            assert_ne!(
                opcode,
                OP_CLOSE,
                "closed: {:?}",
                String::from_utf8_lossy(&payload)
            );
            if opcode == OP_TEXT {
                return serde_json::from_slice(&payload).unwrap();
            }
        }
        panic!("no text frame among the first 100 frames");
    }

    async fn send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("the write half is here");
        tokio::time::timeout(RECEIVE_TIMEOUT, write.write_all(bytes))
            .await
            .expect("the server stopped reading")
            .unwrap();
    }

    /// Write `bytes` on a task of their own, given up after `RECEIVE_TIMEOUT`: a server that
    /// stops reading must not stop the test from reading its close.
    /// The task gives the write half back, so that the socket stays whole until its handle
    /// goes.
    fn send_in_background(
        &mut self,
        bytes: Arc<[u8]>,
    ) -> tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf> {
        let mut write = self.write.take().expect("the write half is here");
        tokio::spawn(async move {
            let _ = tokio::time::timeout(RECEIVE_TIMEOUT, write.write_all(&bytes)).await;
            write
        })
    }

    /// A Signal Fish socket past `Authenticate`.
    async fn signal_fish(addr: SocketAddr) -> Raw {
        let mut raw = Raw::open(addr, "/v3/ws").await;
        let authenticate = serde_json::json!({
            "type": "Authenticate",
            "data": {"app_id": "demo", "sdk_version": "1.0.0"}
        })
        .to_string();
        raw.send(&frame(OP_TEXT, authenticate.as_bytes())).await;
        assert_eq!(raw.text().await["type"], "Authenticated");
        assert_eq!(raw.text().await["type"], "ProtocolInfo");
        raw
    }
}

/// Past the server-wide budget, the socket that grows is closed with 1009; the sockets within
/// it keep their unfinished frames and finish them, and a newcomer is served as usual.
#[tokio::test]
async fn unfinished_frames_past_the_budget_close_the_newest_holder_only() {
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    config.security.frame_budget_bytes = 4 << 20;
    let server = TestServer::start(config).await;
    const FRAME: usize = 1 << 20;
    let filler = vec![b' '; FRAME];
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut raw = Raw::signal_fish(server.addr).await;
        raw.send(&header(OP_TEXT, true, FRAME)).await;
        // The 4 holders stay just under the budget, with room for the newcomer's frames.
        raw.send(&filler[..FRAME - 8 * 1024]).await;
        holders.push(raw);
    }
    let rest: Arc<[u8]> = filler.clone().into();
    for _ in 0..3 {
        let mut over = Raw::signal_fish(server.addr).await;
        over.send(&header(OP_TEXT, true, FRAME)).await;
        // The server stops reading it once over: the write is not waited for.
        let _writer = over.send_in_background(rest.clone());
        assert_eq!(over.close_code().await, 1009);
    }
    // A newcomer authenticates and is answered while the holders still hold their frames.
    let mut newcomer = Raw::signal_fish(server.addr).await;
    newcomer.send(&frame(OP_TEXT, br#"{"type":"Ping"}"#)).await;
    assert_eq!(newcomer.text().await["type"], "Pong");
    // Each holder finishes its frame: an oversized message, refused in-band as always.
    for raw in &mut holders {
        raw.send(&filler[FRAME - 8 * 1024..]).await;
        let refused = raw.text().await;
        assert_eq!(
            refused["data"]["error_code"], "MESSAGE_TOO_LARGE",
            "{refused}"
        );
    }
}

/// Before `Authenticate`, a socket may hold little; and a frame left unfinished meets its
/// deadline however many pings the client sends meanwhile.
#[tokio::test]
async fn an_unauthenticated_socket_reads_little_and_pings_do_not_extend_a_frame() {
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    config.security.frame_deadline_ms = 600;
    let server = TestServer::start(config).await;

    let mut reader = Raw::open(server.addr, "/v3/ws").await;
    reader.send(&header(OP_TEXT, true, 1 << 20)).await;
    let _writer = reader.send_in_background(vec![b' '; 512 << 10].into());
    assert_eq!(reader.close_code().await, 1009);

    let mut held = Raw::signal_fish(server.addr).await;
    held.send(&header(OP_TEXT, true, 10_000)).await;
    held.send(&[b' '; 100]).await;
    let started = tokio::time::Instant::now();
    let mut pings = tokio::time::interval(Duration::from_millis(100));
    let mut closed = None;
    for _ in 0..50 {
        pings.tick().await;
        let ping = frame(OP_PING, b"alive");
        let write = held.write.as_mut().expect("the write half is here");
        if write.write_all(&ping).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(1), held.next()).await {
            Ok((OP_CLOSE, payload)) => {
                closed = Some(u16::from_be_bytes([payload[0], payload[1]]));
                break;
            }
            _ => continue,
        }
    }
    let code = match closed {
        Some(code) => code,
        None => held.close_code().await,
    };
    assert_eq!(code, 1008);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "closed {took:?} after the frame started, pings notwithstanding"
    );
}

/// The reproduction of issue 19: 200 sockets that each send all but the last byte of a
/// 4 MiB frame (pub/sub, whose key authenticates at the upgrade, so only the budget applies)
/// move the process's memory by at most 160 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_unfinished_4_mib_frames_stay_within_160_mib() {
    let _memory = MEMORY.lock().await;
    let server = TestServer::demo().await;
    const FRAME: usize = 4 << 20;
    let filler: Arc<[u8]> = vec![b' '; FRAME - 1].into();
    // Warm up the allocator and the runtime with a few sockets first.
    let mut warm = Raw::open(server.addr, "/v1?key=pk_demo&channels=demo/warm").await;
    warm.send(&frame(OP_TEXT, br#"{"type":"ping"}"#)).await;
    drop(warm);
    let before = rss_kib();
    let sockets: Vec<_> = (0..200)
        .map(|_| {
            let filler = filler.clone();
            let addr = server.addr;
            tokio::spawn(async move {
                let mut raw = Raw::open(addr, "/v1?key=pk_demo&channels=demo/held").await;
                raw.send(&header(OP_TEXT, true, FRAME)).await;
                let write = raw.write.as_mut().expect("the write half is here");
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), write.write_all(&filler)).await;
                raw
            })
        })
        .collect();
    let mut held = Vec::new();
    for socket in sockets {
        held.push(socket.await.unwrap());
    }
    let after = rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("RSS grew by {grown_mib} MiB with 200 unfinished 4 MiB frames");
    assert!(
        grown_mib <= 160,
        "RSS {before} KiB before, {after} KiB with 200 unfinished 4 MiB frames"
    );
    let mut admin = server.admin().await;
    assert!(
        admin
            .command(relaydeck::protocol::admin::Command::Resync)
            .await
            .ok
    );
    drop(held);
}

/// A client that sends only pings between its messages (a keepalive) never meets the frame
/// deadline: a ping is a frame of its own, and leaves nothing unfinished behind it.
#[tokio::test]
async fn pings_alone_never_meet_the_frame_deadline() {
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    config.security.frame_deadline_ms = 300;
    let server = TestServer::start(config).await;
    let mut raw = Raw::signal_fish(server.addr).await;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    for n in 0..12u8 {
        ticks.tick().await;
        raw.send(&frame(OP_PING, &[n; 8])).await;
        let (opcode, payload) = raw.next().await;
        assert_eq!(
            opcode,
            0xA,
            "a pong, not {:?}",
            String::from_utf8_lossy(&payload)
        );
        assert_eq!(payload, vec![n; 8]);
    }
    raw.send(&frame(OP_TEXT, br#"{"type":"Ping"}"#)).await;
    assert_eq!(raw.text().await["type"], "Pong");
}
