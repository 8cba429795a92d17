//! A simulated Flow streams client of the demo app (with its secret key, so it sees that app's
//! data only): subscribes to errors and rooms, lists its subscriptions, and once per session
//! tries an unknown topic.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::routes;

pub async fn simulate(addr: SocketAddr, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Some(mut socket) = super::dial(addr, routes::FLOW).await {
            for frame in [
                json!({"subscription_id": "errors", "action": "subscribe", "topic": "errors"}),
                json!({"subscription_id": "rooms", "action": "subscribe", "topic": "rooms"}),
                json!({"subscription_id": "stats", "action": "subscribe", "topic": "stats"}),
                json!({"action": "list_subscriptions"}),
                json!({"subscription_id": "blocks", "action": "subscribe", "topic": "blockz"}),
            ] {
                let _ = socket.send(Message::Text(frame.to_string().into())).await;
            }
            let session = tokio::time::sleep(Duration::from_secs(60));
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
        let wait = tokio::time::sleep(Duration::from_secs(3));
        tokio::select! {
            _ = wait => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}
