//! Simulated pub/sub peers: chatter on demo channels, presence as peers come and go, a
//! read-only listener, and now and then a mistake that the relay answers with an error code.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::routes;

const NAMES: [&str; 6] = ["ada", "bo", "cy", "dee", "eli", "fay"];

pub async fn simulate(addr: SocketAddr, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for (index, name) in NAMES.iter().enumerate() {
        tasks.push(tokio::spawn(chatter(addr, index, name, stop.clone())));
    }
    tasks.push(tokio::spawn(listener(addr, stop.clone())));
    for task in tasks {
        let _ = task.await;
    }
}

/// One chatty peer that reconnects after its session ends, until stopped.
async fn chatter(
    addr: SocketAddr,
    index: usize,
    name: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let mut round: u64 = 0;
    let mut refusals = super::Refusals::default();
    while !*stop.borrow() {
        round += 1;
        let Some(mut socket) = super::dial(addr, &format!("{}?key=pk_demo", routes::PUBSUB)).await
        else {
            if sleep_or_stop(&mut stop, refusals.refused(None)).await {
                return;
            }
            continue;
        };
        // The code of a close the server sent, when it ended the session.
        let mut closed_with = None;
        let room = format!("demo/room-{}", index % 3);
        for channel in ["demo/lobby", room.as_str()] {
            let _ = socket
                .send(Message::Text(
                    json!({"type":"subscribe","channel":channel})
                        .to_string()
                        .into(),
                ))
                .await;
        }
        // Each session lasts a while, then the peer leaves and comes back, so that connects,
        // disconnects and presence show up in the console.
        let session_ticks = 40 + (index as u64 * 7 + round * 3) % 30;
        for tick in 0..session_ticks {
            let period = Duration::from_millis(600 + (index as u64 * 130));
            let deadline = tokio::time::sleep(period);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            let _ = socket.close(None).await;
                            return;
                        }
                    }
                    incoming = socket.next() => match incoming {
                        Some(Ok(Message::Close(frame))) => {
                            closed_with = frame.map(|f| u16::from(f.code));
                            break;
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            if closed_with.is_some() {
                break;
            }
            let frame = match (tick + index as u64) % 23 {
                // Now and then, the mistakes real clients make.
                5 if index == 1 => {
                    json!({"type":"publish","channel":"other-app/room-1","data":{"from":name},"requestId":format!("{name}-{tick}")})
                }
                11 if index == 2 => {
                    json!({"type":"send","to":"peer-gone","data":"hello?","requestId":format!("{name}-{tick}")})
                }
                17 if index == 3 => {
                    json!({"type":"subscribe","channel":"_system/alerts","requestId":format!("{name}-{tick}")})
                }
                _ => {
                    json!({"type":"publish","channel":if tick % 2 == 0 { "demo/lobby" } else { room.as_str() },"data":{"from":name,"n":tick},"requestId":format!("{name}-{tick}")})
                }
            };
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = socket.close(None).await;
        let wait = match closed_with {
            Some(code) => {
                refusals.refused(crate::catalog::close(crate::catalog::Dialect::Pubsub, code))
            }
            None => {
                refusals.succeeded();
                Duration::from_millis(1500 + index as u64 * 200)
            }
        };
        if sleep_or_stop(&mut stop, wait).await {
            return;
        }
    }
}

/// A read-only subscriber that tries to publish once per session and is refused.
async fn listener(addr: SocketAddr, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Some(mut socket) =
            super::dial(addr, &format!("{}?key=pk_demo_ro", routes::PUBSUB)).await
        {
            let _ = socket
                .send(Message::Text(
                    json!({"type":"subscribe","channel":"demo/public/news"})
                        .to_string()
                        .into(),
                ))
                .await;
            let _ = socket
                .send(Message::Text(json!({"type":"publish","channel":"demo/public/news","data":"hi","requestId":"ro-1"}).to_string().into()))
                .await;
            let session = tokio::time::sleep(Duration::from_secs(45));
            tokio::pin!(session);
            loop {
                tokio::select! {
                    _ = &mut session => break,
                    changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                        let _ = socket.close(None).await;
                        return;
                    },
                    incoming = socket.next() => if !matches!(incoming, Some(Ok(_))) { break },
                }
            }
            let _ = socket.close(None).await;
        }
        if sleep_or_stop(&mut stop, Duration::from_secs(3)).await {
            return;
        }
    }
}

/// Sleep, or return true at once when asked to stop.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
