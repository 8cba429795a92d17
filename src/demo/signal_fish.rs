//! Simulated Signal Fish players: a few rooms with an authority holder, players joining,
//! readying up, exchanging game data and leaving, a spectator, and now and then a join that
//! finds its room full.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::routes;
use crate::wsclient::Socket;

const HOSTS: [&str; 3] = ["Alice", "Mara", "Quinn"];
const GUESTS: [&str; 3] = ["Bob", "Nico", "Rui"];

pub async fn simulate(addr: SocketAddr, stop: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for index in 0..HOSTS.len() {
        tasks.push(tokio::spawn(room_life(addr, index, stop.clone())));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn connect(addr: SocketAddr) -> Option<Socket> {
    let mut socket = super::dial(addr, routes::SIGNAL_FISH).await?;
    send(&mut socket, json!({"type":"Authenticate","data":{"app_id":"demo","sdk_version":"1.0.0","platform":"relaydeck-demo"}})).await;
    Some(socket)
}

async fn send(socket: &mut Socket, frame: Value) -> bool {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .is_ok()
}

/// Read frames until one of type `kind`. `Err` carries the refusal that came instead (an
/// error code, when the server named one), or `None` when the socket ended or nothing came.
async fn wait_for(socket: &mut Socket, kind: &str) -> Result<Value, Option<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()
            .flatten()
            .and_then(Result::ok)
            .ok_or(None)?;
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(text.as_str()).map_err(|_| None)?;
        if value["type"] == kind {
            return Ok(value);
        }
        if let Some(code) = value["data"]["error_code"].as_str() {
            return Err(Some(code.to_owned()));
        }
    }
}

/// The catalog's entry for a refusal, if it named a code.
fn refusal_entry(code: Option<String>) -> Option<&'static crate::catalog::Entry> {
    crate::catalog::get(crate::catalog::Dialect::SignalFish, code.as_deref()?)
}

/// Drain whatever the server sent, so that no simulated client becomes a slow consumer.
async fn drain(socket: &mut Socket) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(1), socket.next()).await
    {
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

/// One room's life, over and over: a host creates it, a guest joins, they ready up, play a
/// little, a spectator watches, someone is turned away, everyone leaves.
async fn room_life(addr: SocketAddr, index: usize, mut stop: watch::Receiver<bool>) {
    let mut round = 0u64;
    let mut refusals = super::Refusals::default();
    while !*stop.borrow() {
        round += 1;
        let Some(mut host) = connect(addr).await else {
            if pause(&mut stop, refusals.refused(None)).await {
                return;
            }
            continue;
        };
        send(&mut host, json!({"type":"JoinRoom","data":{"game_name":"arena","player_name":HOSTS[index],"max_players":2,"supports_authority":true}})).await;
        let joined = match wait_for(&mut host, "RoomJoined").await {
            Ok(joined) => joined,
            Err(code) => {
                let _ = host.close(None).await;
                if pause(&mut stop, refusals.refused(refusal_entry(code))).await {
                    return;
                }
                continue;
            }
        };
        refusals.succeeded();
        let code = joined["data"]["room_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut guest = connect(addr).await;
        if let Some(guest) = guest.as_mut() {
            send(guest, json!({"type":"JoinRoom","data":{"game_name":"arena","room_code":code,"player_name":GUESTS[index]}})).await;
            send(guest, json!({"type":"PlayerReady"})).await;
        }
        let mut watcher = connect(addr).await;
        if let Some(watcher) = watcher.as_mut() {
            send(watcher, json!({"type":"JoinAsSpectator","data":{"game_name":"arena","room_code":code,"spectator_name":format!("Watcher{index}")}})).await;
        }
        if pause(&mut stop, Duration::from_secs(2)).await {
            return;
        }
        // A latecomer finds the room full.
        if round % 2 == 1 {
            if let Some(mut late) = connect(addr).await {
                send(&mut late, json!({"type":"JoinRoom","data":{"game_name":"arena","room_code":code,"player_name":"Latecomer"}})).await;
                let _ = wait_for(&mut late, "RoomJoinFailed").await;
                let _ = late.close(None).await;
            }
        }
        send(&mut host, json!({"type":"PlayerReady"})).await;
        send(&mut host, json!({"type":"StartGame"})).await;
        for tick in 0..(20 + index * 5) {
            send(
                &mut host,
                json!({"type":"GameData","data":{"data":{"tick":tick,"x":tick * 3 % 17}}}),
            )
            .await;
            if let Some(guest) = guest.as_mut() {
                send(
                    guest,
                    json!({"type":"GameData","data":{"data":{"tick":tick,"fire":tick % 4 == 0}}}),
                )
                .await;
                drain(guest).await;
            }
            if let Some(watcher) = watcher.as_mut() {
                drain(watcher).await;
            }
            drain(&mut host).await;
            if pause(&mut stop, Duration::from_millis(700 + index as u64 * 150)).await {
                return;
            }
        }
        for socket in [guest.as_mut(), watcher.as_mut()].into_iter().flatten() {
            let _ = socket.close(None).await;
        }
        send(&mut host, json!({"type":"LeaveRoom"})).await;
        let _ = host.close(None).await;
        if pause(&mut stop, Duration::from_secs(3)).await {
            return;
        }
    }
}
