//! `GET /admin`: the privileged peer the console speaks to (see [`crate::protocol::admin`]).
//!
//! The token is checked before the upgrade (HTTP 401 otherwise), in constant time. Each
//! console gets a snapshot, then the hub's numbered deltas from a broadcast channel; a console
//! whose receiver lags is sent a fresh snapshot instead of the deltas it missed. Commands run
//! one at a time per console, in a task of their own, so a slow command (opening a probe)
//! never holds up the deltas. Every command that acts is written to the audit log before its
//! result is sent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, mpsc};

use crate::catalog;
use crate::protocol::admin::{
    AppStatus, Command, CommandEnvelope, CommandResult, FaultTarget, InjectTarget, ServerMessage,
};
use crate::server::hub::Control;
use crate::server::{probe, Shared};

#[derive(Debug, Deserialize)]
pub struct AdminQuery {
    token: Option<String>,
}

/// The token a request presents: `Authorization: Bearer …`, else `?token=`.
pub fn presented_token(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .or_else(|| query_token.map(str::to_owned))
}

pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<AdminQuery>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let presented = presented_token(&headers, query.token.as_deref());
    if !token_matches(presented.as_deref(), &shared.admin_token) {
        return (
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required: Authorization: Bearer <token> or ?token=<token>\n",
        )
            .into_response();
    }
    let who = format!("admin@{addr}");
    upgrade
        .max_message_size(16 << 20)
        .on_upgrade(move |socket| serve(socket, shared, who))
}

enum Reply {
    Result(CommandResult),
    /// Send a fresh snapshot, then this result.
    Resync(CommandResult),
}

async fn serve(socket: WebSocket, shared: Arc<Shared>, who: String) {
    let (mut sink, mut stream) = socket.split();
    let (mut last_seq, snapshot, mut events) = shared.hub.subscribe();
    if send_message(
        &mut sink,
        &ServerMessage::Snapshot {
            seq: last_seq,
            snapshot: Box::new(snapshot),
        },
    )
    .await
    .is_err()
    {
        return;
    }
    let (commands_tx, mut commands_rx) = mpsc::unbounded_channel::<CommandEnvelope>();
    let (replies_tx, mut replies_rx) = mpsc::unbounded_channel::<Reply>();
    let worker = {
        let shared = shared.clone();
        let who = who.clone();
        tokio::spawn(async move {
            while let Some(envelope) = commands_rx.recv().await {
                let reply = execute(&shared, &who, envelope).await;
                if replies_tx.send(reply).is_err() {
                    break;
                }
            }
        })
    };
    let mut stopping = shared.stopping.subscribe();
    loop {
        tokio::select! {
            delta = events.recv() => match delta {
                Ok(delta) => {
                    if delta.seq > last_seq {
                        last_seq = delta.seq;
                        if sink.send(Message::Text(delta.text.clone())).await.is_err() {
                            break;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (seq, snapshot, receiver) = shared.hub.subscribe();
                    events = receiver;
                    last_seq = seq;
                    if send_message(&mut sink, &ServerMessage::Snapshot { seq, snapshot: Box::new(snapshot) }).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            reply = replies_rx.recv() => match reply {
                Some(Reply::Result(result)) => {
                    if send_message(&mut sink, &ServerMessage::Result(result)).await.is_err() {
                        break;
                    }
                }
                Some(Reply::Resync(result)) => {
                    let (seq, snapshot, receiver) = shared.hub.subscribe();
                    events = receiver;
                    last_seq = seq;
                    if send_message(&mut sink, &ServerMessage::Snapshot { seq, snapshot: Box::new(snapshot) }).await.is_err()
                        || send_message(&mut sink, &ServerMessage::Result(result)).await.is_err()
                    {
                        break;
                    }
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<CommandEnvelope>(text.as_str()) {
                    Ok(envelope) => {
                        let _ = commands_tx.send(envelope);
                    }
                    Err(error) => {
                        let id = serde_json::from_str::<serde_json::Value>(text.as_str())
                            .ok()
                            .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                            .unwrap_or(0);
                        let result = CommandResult {
                            id,
                            ok: false,
                            message: format!("not a command of the admin protocol: {error}"),
                            data: None,
                        };
                        if send_message(&mut sink, &ServerMessage::Result(result)).await.is_err() {
                            break;
                        }
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = stopping.changed() => {
                let _ = sink.send(crate::server::connection::close_message(1001, "server shutting down")).await;
                break;
            }
        }
    }
    worker.abort();
    let _ = sink.close().await;
}

async fn send_message(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).unwrap_or_default();
    sink.send(Message::Text(text.into())).await
}

fn result(id: u64, outcome: Result<String, String>) -> CommandResult {
    match outcome {
        Ok(message) => CommandResult {
            id,
            ok: true,
            message,
            data: None,
        },
        Err(message) => CommandResult {
            id,
            ok: false,
            message,
            data: None,
        },
    }
}

async fn execute(shared: &Arc<Shared>, who: &str, envelope: CommandEnvelope) -> Reply {
    let id = envelope.id;
    let hub = &shared.hub;
    let (action, target, outcome): (&str, String, Result<String, String>) = match envelope.command {
        Command::Resync => return Reply::Resync(result(id, Ok("fresh snapshot sent".to_owned()))),
        Command::Kick { peer, reason } => {
            // The reason goes into the result, so that the audit log keeps why as well as who.
            let told = match &reason {
                Some(reason) => format!(", reason {reason:?}"),
                None => String::new(),
            };
            let outcome = check_kick_reason(reason.as_deref())
                .and_then(|()| hub.kick(&peer, reason.clone()))
                .map(|info| {
                    format!(
                        "closing {} ({}, {}, {}) with 4020 admin_disconnect{told}",
                        info.id,
                        info.dialect,
                        info.app.as_deref().unwrap_or("no app"),
                        info.identity.as_deref().unwrap_or("anonymous")
                    )
                });
            ("kick", peer, outcome)
        }
        Command::SetAppStatus { app, status } => {
            let outcome = set_app_status(shared, who, &app, status).await;
            (
                "set_app_status",
                format!("{app} → {}", status.id()),
                outcome,
            )
        }
        Command::CloseRoom { room } => {
            let outcome = hub.close_room(&room);
            ("close_room", room, outcome)
        }
        Command::TransferAuthority { room, player_id } => {
            let outcome = hub.transfer_authority(&room, &player_id);
            (
                "transfer_authority",
                format!("{room} → {player_id}"),
                outcome,
            )
        }
        Command::RevokeAuthority { room } => {
            let outcome = hub.revoke_authority(&room);
            ("revoke_authority", room, outcome)
        }
        Command::Tap { peer, on } => {
            let outcome = hub.set_tap(&peer, on).map(|()| {
                format!(
                    "{} frames of {peer}",
                    if on { "tapping" } else { "no longer tapping" }
                )
            });
            ("tap", peer, outcome)
        }
        Command::Inject { target, frame } => {
            let (target_name, outcome) = inject(shared, target, frame).await;
            return match outcome {
                Ok((message, peer)) => {
                    audit(shared, who, "inject", &target_name, &message).await;
                    let mut reply = result(id, Ok(message));
                    reply.data = Some(json!({ "peer": peer }));
                    Reply::Result(reply)
                }
                Err(message) => {
                    audit(
                        shared,
                        who,
                        "inject",
                        &target_name,
                        &format!("refused: {message}"),
                    )
                    .await;
                    Reply::Result(result(id, Err(message)))
                }
            };
        }
        Command::ArmFault {
            target,
            code,
            count,
        } => {
            let target_name = match &target {
                FaultTarget::Peer { peer } => peer.clone(),
                FaultTarget::Dialect { dialect } => dialect.id().to_owned(),
            };
            let outcome = arm_fault(shared, target, code, count);
            ("arm_fault", target_name, outcome)
        }
        Command::DisarmFault { fault } => {
            let outcome = hub
                .disarm_fault(fault)
                .map(|f| format!("fault {} ({} on {:?}) disarmed", f.id, f.code, f.target));
            ("disarm_fault", fault.to_string(), outcome)
        }
    };
    let recorded = match &outcome {
        Ok(message) => message.clone(),
        Err(message) => format!("refused: {message}"),
    };
    audit(shared, who, action, &target, &recorded).await;
    Reply::Result(result(id, outcome))
}

/// The longest kick reason, in bytes: it may travel to the peer inside a dialect's notice.
pub const KICK_REASON_MAX: usize = 256;

/// A kick reason is a short line of printable text: it is shown to people (the audit log, the
/// peer's own notice), so neither a page of text nor control characters belong in it.
fn check_kick_reason(reason: Option<&str>) -> Result<(), String> {
    match reason {
        Some(reason) if reason.len() > KICK_REASON_MAX => Err(format!(
            "the reason is {} bytes; at most {KICK_REASON_MAX} are kept",
            reason.len()
        )),
        Some(reason) if reason.chars().any(char::is_control) => {
            Err("the reason must be one line of printable text".to_owned())
        }
        _ => Ok(()),
    }
}

async fn audit(shared: &Shared, who: &str, action: &str, target: &str, outcome: &str) {
    if let Err(error) = shared.persist.audit(who, action, target, outcome).await {
        tracing::error!(%error, action, target, "could not append to the audit log");
    }
}

async fn set_app_status(
    shared: &Shared,
    who: &str,
    app: &str,
    status: AppStatus,
) -> Result<String, String> {
    let mut statuses = shared.hub.app_statuses();
    if !statuses.contains_key(app) {
        return Err(format!("no app {app:?}"));
    }
    statuses.insert(app.to_owned(), status);
    shared
        .persist
        .save_statuses(statuses)
        .await
        .map_err(|e| format!("could not persist the change, nothing was changed: {e}"))?;
    let told = shared.hub.set_app_status(app, status, who)?;
    Ok(match status {
        AppStatus::Active => format!("{app} is active; {told} live peers"),
        other => format!(
            "{app} is {}; {told} live peers are being closed and new ones refused",
            other.id()
        ),
    })
}

fn arm_fault(
    shared: &Shared,
    target: FaultTarget,
    code: String,
    count: u32,
) -> Result<String, String> {
    if count == 0 {
        return Err("count must be at least 1".to_owned());
    }
    let dialect = match &target {
        FaultTarget::Dialect { dialect } => *dialect,
        FaultTarget::Peer { peer } => {
            shared
                .hub
                .peer(peer)
                .ok_or_else(|| format!("no peer {peer}"))?
                .dialect
        }
    };
    // The catalog's own spelling, so that `internal_error` arms Flow's `internal error`.
    let Some(entry) = catalog::get(dialect, &code) else {
        return Err(format!("{code:?} is not a {dialect} code in the catalog"));
    };
    let fault = shared.hub.arm_fault(target, entry.code.to_owned(), count);
    Ok(format!(
        "fault {} armed: the next {} requests fail with {}",
        fault.id, fault.remaining, fault.code
    ))
}

/// Returns the target's name for the audit log and, on success, a message and the peer id.
async fn inject(
    shared: &Arc<Shared>,
    target: InjectTarget,
    frame: String,
) -> (String, Result<(String, String), String>) {
    match target {
        InjectTarget::Peer { peer } => {
            let outcome = if shared.hub.control(&peer, Control::Inject(frame)) {
                Ok((format!("injected into {peer}"), peer.clone()))
            } else {
                Err(format!("no live peer {peer}"))
            };
            (peer, outcome)
        }
        InjectTarget::Probe { dialect, query } => {
            let name = format!("new {dialect} probe");
            let outcome = probe::open(shared, dialect, &query)
                .await
                .and_then(|peer| match shared.hub.probe_sender(&peer) {
                    Some(sender) if sender.send(frame).is_ok() => {
                        Ok((format!("probe {peer} connected; frame sent"), peer))
                    }
                    _ => Err(format!(
                        "probe {peer} closed before the frame could be sent"
                    )),
                });
            (name, outcome)
        }
        InjectTarget::ExistingProbe { peer } => {
            let outcome = match shared.hub.probe_sender(&peer) {
                Some(sender) if sender.send(frame).is_ok() => {
                    Ok((format!("frame sent through probe {peer}"), peer.clone()))
                }
                _ => Err(format!("{peer} is not an open probe")),
            };
            (peer, outcome)
        }
    }
}
