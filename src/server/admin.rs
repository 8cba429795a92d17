//! `GET /admin`: the privileged peer the console speaks to (see [`crate::protocol::admin`]).
//!
//! The admin or viewer token is checked before the upgrade (HTTP 401 otherwise), in constant
//! time, and only from the `Authorization` header ([`access`]); a viewer, or any console of a
//! `--readonly` server, may watch, resync and read the flight recorder (`frames`, `export`)
//! but every acting command is refused. Each
//! console gets a snapshot, then the hub's numbered deltas from a broadcast channel; a console
//! whose receiver lags is sent a fresh snapshot instead of the deltas it missed. Commands run
//! one at a time per console, in a task of their own, so a slow command (opening a probe)
//! never holds up the deltas. Every command that acts is written to the audit log before it
//! takes effect (or refused when that fails) and its outcome before its result is sent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::catalog;
use crate::protocol::admin::{
    AppStatus, BanInfo, BanTarget, Command, CommandEnvelope, CommandResult, FaultTarget,
    InjectTarget, ServerMessage,
};
use crate::protocol::path_fault::PathFault;
use crate::server::access::{self, Access};
use crate::server::hub::Hub;
use crate::server::peer::Control;
use crate::server::signal_fish::rooms::RoomChange;
use crate::server::{probe, Shared};

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), true) {
        return refused;
    }
    let failures = &shared.admission.auth_failures;
    if let Some(refused) = failures.refusal(addr.ip()) {
        return refused;
    }
    let Some(granted) =
        access::authorize(&headers, shared.hub.config(), &shared.admin_token, false)
    else {
        failures.failed(addr.ip(), "GET /admin");
        return (
            StatusCode::UNAUTHORIZED,
            "a valid admin or viewer token is required: Authorization: Bearer <token>\n",
        )
            .into_response();
    };
    let who = match granted {
        Access::Viewer => format!("viewer@{addr}"),
        _ => format!("admin@{addr}"),
    };
    let may_act = granted.may_act(shared.readonly);
    upgrade
        .max_message_size(16 << 20)
        .on_upgrade(move |socket| serve(socket, shared, who, may_act))
}

/// Whether a command changes anything; a read-only console or server may only resync and
/// read the flight recorder.
fn acts(command: &Command) -> bool {
    !matches!(
        command,
        Command::Resync | Command::Frames { .. } | Command::Export { .. }
    )
}

enum Reply {
    Result(CommandResult),
    /// Send a fresh snapshot, then this result.
    Resync(CommandResult),
}

async fn serve(socket: WebSocket, shared: Arc<Shared>, who: String, may_act: bool) {
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
                    Ok(envelope) if !may_act && acts(&envelope.command) => {
                        let reason = if shared.readonly {
                            "this server is read-only (serve --readonly): it watches, it does not act"
                        } else {
                            "this connection is read-only (viewer token): it watches, it does not act"
                        };
                        let result = CommandResult { id: envelope.id, ok: false, message: reason.to_owned(), data: None };
                        if send_message(&mut sink, &ServerMessage::Result(result)).await.is_err() {
                            break;
                        }
                    }
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

/// Run one command. Every action is put on record before it takes effect and its outcome
/// after; an action that cannot be put on record is refused, so nothing is done unaudited.
async fn execute(shared: &Arc<Shared>, who: &str, envelope: CommandEnvelope) -> Reply {
    let id = envelope.id;
    // A peer or room of another node of a cluster: that node runs the command (and puts it
    // in its own audit log), and its answer comes back here.
    if let Some((cluster, node)) = remote_node(shared, &envelope.command) {
        return Reply::Result(cluster.ask(&node, envelope, who).await);
    }
    match envelope.command {
        Command::Resync => {
            return Reply::Resync(result(id, Ok("fresh snapshot sent".to_owned())));
        }
        // Reading changes nothing, so it is not put on record (viewers and read-only servers
        // may read; see SECURITY.md).
        Command::Frames { peer } => return Reply::Result(frames(shared, id, &peer)),
        Command::Export { peer } => return Reply::Result(export(shared, id, &peer)),
        _ => {}
    }
    let described = envelope.command.describe();
    let (action, target) = (described.action, described.target);
    let ticket = match shared.persist.audit_intent(who, action, &target).await {
        Ok(ticket) => ticket,
        Err(error) => {
            tracing::error!(%error, action, target, "refusing an admin action that cannot be audited");
            return Reply::Result(result(
                id,
                Err(format!(
                    "refused: the audit log cannot be written ({error}), so {action} was not done"
                )),
            ));
        }
    };
    let (outcome, data) = perform(shared, who, envelope.command).await;
    let recorded = match &outcome {
        Ok(message) => message.clone(),
        Err(message) => format!("refused: {message}"),
    };
    let mut reply = result(id, outcome);
    reply.data = data;
    if let Err(error) = shared.persist.audit_outcome(&ticket, &recorded).await {
        // The intent is on record and the action ran; say that its outcome is missing.
        tracing::error!(%error, action, target, "could not append an outcome to the audit log");
        reply.message.push_str(&format!(
            " (its outcome could not be written to the audit log: {error})"
        ));
    }
    Reply::Result(reply)
}

/// Carry out an action; returns the outcome and, for probes, the result's data.
async fn perform(
    shared: &Arc<Shared>,
    who: &str,
    command: Command,
) -> (Result<String, String>, Option<serde_json::Value>) {
    let hub = &shared.hub;
    let outcome = match command {
        Command::Resync => Ok("fresh snapshot sent".to_owned()),
        Command::Kick { peer, reason } => {
            // The reason goes into the result, so that the audit log keeps why as well as who.
            let told = match &reason {
                Some(reason) => format!(", reason {reason:?}"),
                None => String::new(),
            };
            check_kick_reason(reason.as_deref())
                .and_then(|()| hub.kick(&peer, reason.clone()))
                .map(|info| {
                    format!(
                        "closing {} ({}, {}, {}) with 4020 admin_disconnect{told}",
                        info.id,
                        info.dialect,
                        info.app.as_deref().unwrap_or("no app"),
                        info.identity.as_deref().unwrap_or("anonymous")
                    )
                })
        }
        Command::SetAppStatus { app, status } => set_app_status(shared, who, &app, status).await,
        Command::CloseRoom { room } => recorded(hub, shared.signal_fish.close_room(hub, &room)),
        Command::TransferAuthority { room, player_id } => recorded(
            hub,
            shared
                .signal_fish
                .transfer_authority(hub, &room, &player_id),
        ),
        Command::RevokeAuthority { room } => {
            recorded(hub, shared.signal_fish.revoke_authority(hub, &room))
        }
        Command::Tap { peer, on } => hub.set_tap(&peer, on).map(|()| {
            format!(
                "{} frames of {peer}",
                if on { "tapping" } else { "no longer tapping" }
            )
        }),
        Command::Inject { target, frame } => {
            return match inject(shared, target, frame).await {
                Ok((message, peer)) => (Ok(message), Some(json!({ "peer": peer }))),
                Err(message) => (Err(message), None),
            };
        }
        Command::ArmFault {
            target,
            code,
            count,
        } => arm_fault(shared, target, code, count),
        Command::DisarmFault { fault } => hub
            .disarm_fault(fault)
            .map(|f| format!("fault {} ({} on {:?}) disarmed", f.id, f.code, f.target)),
        Command::Ban {
            target,
            duration_ms,
            reason,
        } => {
            return match ban(shared, who, target, duration_ms, reason).await {
                Ok((message, id)) => (Ok(message), Some(json!({ "ban": id }))),
                Err(message) => (Err(message), None),
            };
        }
        Command::Unban { ban } => unban(shared, who, ban).await,
        // Answered in `execute`, without an audit record.
        Command::Frames { .. } | Command::Export { .. } => {
            Err("a read is not an action".to_owned())
        }
    };
    (outcome, None)
}

/// Put a ban in force: persisted first (nothing changes when that fails), then live matching
/// peers are kicked and new ones refused. Returns a message and the ban's id.
async fn ban(
    shared: &Shared,
    who: &str,
    target: BanTarget,
    duration_ms: u64,
    reason: String,
) -> Result<(String, u64), String> {
    let target = crate::server::bans::check(&target, duration_ms, &reason)?;
    // The same guard as app statuses: two consoles persisting at once must not write each
    // other's stale list.
    let _serialized = shared.persist.status_change().await;
    let id = shared.hub.bans().allocate_id();
    let now = crate::clock::now_ms();
    let ban = BanInfo {
        id,
        target,
        reason,
        by: who.to_owned(),
        created_at_ms: now,
        until_ms: now.saturating_add(duration_ms),
    };
    let (mut bans, last_id) = shared.hub.bans().list();
    bans.push(ban.clone());
    shared
        .persist
        .save_bans(bans, last_id.max(id))
        .await
        .map_err(|e| format!("could not persist the ban, nothing was changed: {e}"))?;
    let described = ban.target.describe();
    let until = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ban.until_ms),
    );
    let kicked = shared.hub.add_ban(ban);
    Ok((
        format!("ban {id} on {described} until {until}; {kicked} live peers kicked"),
        id,
    ))
}

async fn unban(shared: &Shared, who: &str, id: u64) -> Result<String, String> {
    let _serialized = shared.persist.status_change().await;
    let (bans, last_id) = shared.hub.bans().list();
    if !bans.iter().any(|b| b.id == id) {
        return Err(format!("no ban {id} in force"));
    }
    let rest: Vec<BanInfo> = bans.into_iter().filter(|b| b.id != id).collect();
    shared
        .persist
        .save_bans(rest, last_id)
        .await
        .map_err(|e| format!("could not persist the change, the ban stays: {e}"))?;
    let lifted = shared.hub.lift_ban(id, who)?;
    Ok(format!("ban {id} on {} lifted", lifted.target.describe()))
}

/// `frames`: what the flight recorder holds of a live or closed peer.
fn frames(shared: &Shared, id: u64, peer: &str) -> CommandResult {
    match shared.hub.peer_record(peer) {
        Some(record) => {
            let frames: Vec<_> = record.frames.iter().map(|r| r.frame()).collect();
            CommandResult {
                id,
                ok: true,
                message: format!(
                    "{} frames of {peer}{}",
                    frames.len(),
                    if record.closed.is_some() {
                        " (closed)"
                    } else {
                        ""
                    }
                ),
                data: Some(json!({ "peer": peer, "path": record.path, "frames": frames })),
            }
        }
        None => result(
            id,
            Err(format!(
                "no peer {peer}, live or in the history (it may have aged out)"
            )),
        ),
    }
}

/// `export`: a session file reproducing what a peer went through, with the room members its
/// failure needed.
fn export(shared: &Shared, id: u64, peer: &str) -> CommandResult {
    use crate::session::export::{Participant, Recorded};
    let Some(record) = shared.hub.peer_record(peer) else {
        return result(
            id,
            Err(format!(
                "no peer {peer}, live or in the history (it may have aged out)"
            )),
        );
    };
    let participant = |record: &crate::server::hub::PeerRecord| Participant {
        peer: record.info.id.clone(),
        dialect: record.info.dialect,
        path: record.path.clone().unwrap_or_default(),
        frames: record
            .frames
            .iter()
            .map(|r| Recorded {
                seq: r.seq,
                frame: r.frame(),
            })
            .collect(),
        closed: record.closed.clone(),
        closed_at_ms: record.closed_at_ms,
    };
    // The rooms the peer was in or tried to join: their other members are replayed too.
    let mut rooms = record.rooms.clone();
    for frame in &record.frames {
        if frame.direction == crate::protocol::admin::Direction::In {
            if let Some(code) = serde_json::from_str::<serde_json::Value>(frame.text.as_str())
                .ok()
                .and_then(|v| {
                    v.pointer("/data/room_code")
                        .and_then(|c| c.as_str())
                        .map(str::to_owned)
                })
            {
                if !rooms.contains(&code) {
                    rooms.push(code);
                }
            }
        }
    }
    let mut others: Vec<Participant> = Vec::new();
    for room in &rooms {
        for other in shared.hub.room_participants(room, peer) {
            if !others.iter().any(|o| o.peer == other.info.id) {
                others.push(participant(&other));
            }
        }
    }
    match crate::session::export::export(&participant(&record), &others) {
        Ok(session) => {
            let connections = others
                .iter()
                .filter(|o| session.steps.iter().any(|s| matches!(s, crate::session::Step::Connect { conn, .. } if *conn == o.peer)))
                .count()
                + 1;
            CommandResult {
                id,
                ok: true,
                message: format!(
                    "exported {peer}: {} steps over {connections} connections",
                    session.steps.len()
                ),
                data: Some(json!({
                    "name": session.header.name,
                    "session": session.to_jsonl(),
                    "connections": connections,
                })),
            }
        }
        Err(message) => result(id, Err(message)),
    }
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

async fn set_app_status(
    shared: &Shared,
    who: &str,
    app: &str,
    status: AppStatus,
) -> Result<String, String> {
    let told = apply_app_status(shared, who, app, status).await?;
    // Every node of a cluster applies it too, and Redis keeps it for nodes that start later.
    if let Some(cluster) = &shared.cluster {
        cluster.set_app_status(app, status, who);
    }
    Ok(match status {
        AppStatus::Active => format!("{app} is active; {told} live peers"),
        other => format!(
            "{app} is {}; {told} live peers are being closed and new ones refused",
            other.id()
        ),
    })
}

/// A room command's outcome, its change recorded for admins before the command's result
/// goes back.
fn recorded(hub: &Hub, done: Result<(String, RoomChange<'_>), String>) -> Result<String, String> {
    done.map(|(done, change)| {
        hub.record_rooms(change.events());
        done
    })
}

/// The other cluster node a command is for: the node named in its peer id, or the node
/// holding its room.
fn remote_node<'a>(
    shared: &'a Shared,
    command: &Command,
) -> Option<(&'a Arc<crate::server::cluster::Cluster>, String)> {
    let cluster = shared.cluster.as_ref()?;
    let peer = match command {
        Command::Kick { peer, .. }
        | Command::Tap { peer, .. }
        | Command::Frames { peer }
        | Command::Export { peer }
        | Command::Inject {
            target:
                InjectTarget::Peer { peer }
                | InjectTarget::ExistingProbe { peer }
                | InjectTarget::ToClient { peer },
            ..
        }
        | Command::ArmFault {
            target: FaultTarget::Peer { peer },
            ..
        } => Some(peer),
        _ => None,
    };
    let node = match (peer, command) {
        (Some(peer), _) => cluster.node_of_peer(peer).map(str::to_owned),
        (
            None,
            Command::CloseRoom { room }
            | Command::TransferAuthority { room, .. }
            | Command::RevokeAuthority { room },
        ) => shared.hub.remote_room_node(room),
        _ => None,
    }?;
    Some((cluster, node))
}

/// A command another node of the cluster sent for one of this node's peers or rooms, run
/// and audited here as `by` (the operator) from `from` (their node).
pub async fn execute_for_node(
    shared: &Arc<Shared>,
    by: &str,
    from: &str,
    envelope: CommandEnvelope,
) -> CommandResult {
    if shared.readonly && acts(&envelope.command) {
        return result(
            envelope.id,
            Err("this node is read-only (serve --readonly): admin actions are refused".to_owned()),
        );
    }
    let who = format!("{by} via {from}");
    match Box::pin(execute(shared, &who, envelope)).await {
        Reply::Result(result) | Reply::Resync(result) => result,
    }
}

/// Persist an app's new status, then apply it: live peers of a suspended or revoked app are
/// closed with their dialect's code. Changes are serialized, so two consoles (or a console
/// and another node) cannot interleave their writes. Returns how many live peers were told.
pub async fn apply_app_status(
    shared: &Shared,
    who: &str,
    app: &str,
    status: AppStatus,
) -> Result<usize, String> {
    let _serialized = shared.persist.status_change().await;
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
    shared.hub.set_app_status(app, status, who)
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
    let code = match code.parse::<PathFault>() {
        Ok(_) if !shared.hub.path_faults_allowed() => {
            return Err(format!(
                "{code} acts on frames relayed by relaydeck proxy; this server answers its peers itself"
            ))
        }
        // One spelling in the list (`drop@client`), whatever was typed.
        Ok(path_fault) => path_fault.to_string(),
        Err(mistake) if PathFault::meant(&code) => return Err(mistake),
        // The catalog's own spelling, so that `internal_error` arms Flow's `internal error`.
        Err(_) => match catalog::get(dialect, &code) {
            Some(entry) => entry.code.to_owned(),
            None => return Err(format!("{code:?} is not a {dialect} code in the catalog")),
        },
    };
    let fault = shared.hub.arm_fault(target, code, count);
    if let Ok(path_fault) = fault.code.parse::<PathFault>() {
        return Ok(format!(
            "fault {} armed: {}",
            fault.id,
            path_fault.describe(fault.remaining)
        ));
    }
    Ok(format!(
        "fault {} armed: the next {} requests fail with {}",
        fault.id, fault.remaining, fault.code
    ))
}

/// On success, a message and the peer id.
async fn inject(
    shared: &Arc<Shared>,
    target: InjectTarget,
    frame: String,
) -> Result<(String, String), String> {
    match target {
        InjectTarget::Peer { peer } => {
            if shared.hub.control(&peer, Control::Inject(frame)) {
                Ok((format!("injected into {peer}"), peer.clone()))
            } else {
                Err(format!("no live peer {peer}"))
            }
        }
        InjectTarget::Probe { dialect, query } => probe::open(shared, dialect, &query)
            .await
            .and_then(|peer| match shared.hub.probe_sender(&peer) {
                Some(sender) if sender.send(frame).is_ok() => {
                    Ok((format!("probe {peer} connected; frame sent"), peer))
                }
                _ => Err(format!(
                    "probe {peer} closed before the frame could be sent"
                )),
            }),
        InjectTarget::ExistingProbe { peer } => match shared.hub.probe_sender(&peer) {
            Some(sender) if sender.send(frame).is_ok() => {
                Ok((format!("frame sent through probe {peer}"), peer.clone()))
            }
            _ => Err(format!("{peer} is not an open probe")),
        },
        InjectTarget::ToClient { peer } => match shared.hub.handle(&peer) {
            Some(handle)
                if shared.hub.deliver(
                    &handle,
                    &frame.into(),
                    crate::server::peer::Priority::Reply,
                ) =>
            {
                Ok((format!("sent to {peer}'s client"), peer.clone()))
            }
            _ => Err(format!("no live peer {peer}")),
        },
    }
}
