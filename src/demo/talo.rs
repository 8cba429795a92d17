//! Simulated Talo players: alice and bob get tickets and tokens over HTTP, identify on the
//! socket and chat in `general`; now and then alice writes to `staff`, where she is not a
//! member, and the socket answers LISTENER_ERROR.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::routes;
use crate::wsclient::Socket;

pub async fn simulate(addr: SocketAddr, stop: watch::Receiver<bool>) {
    let alice = tokio::spawn(player(addr, "alice", stop.clone()));
    let bob = tokio::spawn(player(addr, "bob", stop));
    let _ = tokio::join!(alice, bob);
}

async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

/// Ticket, identity and an identified socket, the way a Talo game client gets them.
async fn connect(addr: SocketAddr, http: &reqwest::Client, who: &str) -> Option<Socket> {
    let base = format!("http://{addr}");
    let identity: Value = if who == "bob" {
        http.post(format!("{base}{}", routes::TALO_LOGIN))
            .bearer_auth("talo_demo_full")
            .json(&json!({"identifier": "bob", "password": "demo-password"}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?
    } else {
        http.get(format!(
            "{base}{}?service=username&identifier={who}",
            routes::TALO_IDENTIFY
        ))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?
    };
    let ticket: Value = http
        .post(format!("{base}{}", routes::TALO_SOCKET_TICKETS))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let path = format!(
        "{}?ticket={}",
        routes::TALO_ROOT,
        ticket["ticket"].as_str()?
    );
    let mut socket = super::dial(addr, &path).await?;
    let mut data =
        json!({"playerAliasId": identity["alias"]["id"], "socketToken": identity["socketToken"]});
    if let Some(session) = identity.get("sessionToken") {
        data["sessionToken"] = session.clone();
    }
    socket
        .send(Message::Text(
            json!({"req": "v1.players.identify", "data": data})
                .to_string()
                .into(),
        ))
        .await
        .ok()?;
    Some(socket)
}

async fn player(addr: SocketAddr, who: &'static str, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::new();
    let mut round = 0u64;
    let mut refusals = super::Refusals::default();
    while !*stop.borrow() {
        round += 1;
        let Some(mut socket) = connect(addr, &http, who).await else {
            if pause(
                &mut stop,
                refusals.refused(None).max(Duration::from_secs(3)),
            )
            .await
            {
                return;
            }
            continue;
        };
        refusals.succeeded();
        for tick in 0..40u64 {
            let frame = if who == "alice" && tick % 13 == 7 {
                json!({"req": "v1.channels.message", "data": {"channel": {"id": 2}, "message": "anyone in staff?"}})
            } else if tick % 5 == 0 {
                json!({"req": "v1.player-relationships.broadcast", "data": {"message": format!("{who} is on round {round}")}})
            } else {
                json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": format!("{who}: message {tick}")}})
            };
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            let _ = socket.send(Message::Text("v1.heartbeat".into())).await;
            while let Ok(Some(Ok(_))) =
                tokio::time::timeout(Duration::from_millis(1), socket.next()).await
            {}
            if pause(
                &mut stop,
                Duration::from_millis(if who == "alice" { 1100 } else { 1500 }),
            )
            .await
            {
                let _ = socket.close(None).await;
                return;
            }
        }
        let _ = socket.close(None).await;
        if pause(&mut stop, Duration::from_secs(2)).await {
            return;
        }
    }
}
