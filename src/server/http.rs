//! Plain HTTP routes: `/health`, `/metrics`, `POST /v1/tokens`, `DELETE /v1/peers/{id}`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::clock::now_ms;
use crate::server::access::{bearer, token_matches};
use crate::server::config::PubsubAction;
use crate::server::{token, Shared};

pub async fn health(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({
        "status": "ok",
        "version": shared.hub.info().version,
        "peers": shared.hub.peer_count(),
    }))
    .into_response()
}

/// Prometheus label values escape backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text. On loopback anyone on the machine may read it; bound beyond loopback it
/// shows every app's traffic to the network, so it needs the admin or viewer token.
pub async fn metrics(
    State(shared): State<Arc<Shared>>,
    axum::extract::ConnectInfo(remote): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let on_loopback = shared
        .hub
        .info()
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|addr| addr.ip().is_loopback());
    let failures = &shared.admission.auth_failures;
    if !on_loopback {
        if let Some(refused) = failures.refusal(remote.ip()) {
            return refused;
        }
    }
    if !on_loopback
        && crate::server::access::authorize(
            &headers,
            shared.hub.config(),
            &shared.admin_token,
            false,
        )
        .is_none()
    {
        failures.failed(remote.ip(), "GET /metrics");
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            "metrics of a server bound beyond loopback need Authorization: Bearer <admin or viewer token>\n",
        )
            .into_response();
    }
    let (stats, apps, channels) = shared.hub.metrics();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP relaydeck_peers Connected peers by dialect.");
    let _ = writeln!(out, "# TYPE relaydeck_peers gauge");
    for dialect in crate::catalog::Dialect::ALL {
        if matches!(
            dialect,
            crate::catalog::Dialect::TaloHttp | crate::catalog::Dialect::Websocket
        ) {
            continue;
        }
        let count = stats.peers_by_dialect.get(&dialect).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "relaydeck_peers{{dialect=\"{}\"}} {count}",
            dialect.id()
        );
    }
    let _ = writeln!(
        out,
        "# HELP relaydeck_frames_in_total Frames received from peers."
    );
    let _ = writeln!(out, "# TYPE relaydeck_frames_in_total counter");
    let _ = writeln!(out, "relaydeck_frames_in_total {}", stats.frames_in);
    let _ = writeln!(
        out,
        "# HELP relaydeck_frames_out_total Frames sent to peers."
    );
    let _ = writeln!(out, "# TYPE relaydeck_frames_out_total counter");
    let _ = writeln!(out, "relaydeck_frames_out_total {}", stats.frames_out);
    let _ = writeln!(
        out,
        "# HELP relaydeck_frames_dropped_total Relayed frames dropped because their peer was behind."
    );
    let _ = writeln!(out, "# TYPE relaydeck_frames_dropped_total counter");
    let _ = writeln!(
        out,
        "relaydeck_frames_dropped_total {}",
        shared.hub.frames_dropped()
    );
    if let Some(cluster) = &shared.cluster {
        // One sample each, labelled with this node (every node of a cluster serves its own).
        let node = label(&cluster.node_id);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{node=\"{node}\"}} {value}");
        };
        let (published, round_trips) = cluster.publish_counts();
        metric(
            "relaydeck_cluster_redis_up",
            "gauge",
            "Whether this node reached Redis on its last try.",
            u64::from(cluster.redis_ok()),
        );
        metric(
            "relaydeck_cluster_dropped_total",
            "counter",
            "Messages for other nodes dropped while Redis was away or slow.",
            cluster.dropped(),
        );
        metric(
            "relaydeck_cluster_published_total",
            "counter",
            "Messages this node published for other nodes.",
            published,
        );
        metric(
            "relaydeck_cluster_round_trips_total",
            "counter",
            "Pipelines sent to Redis (each one round trip, carrying every message queued meanwhile).",
            round_trips,
        );
        let alive = cluster.nodes().iter().filter(|n| n.alive).count();
        metric(
            "relaydeck_cluster_nodes_alive",
            "gauge",
            "Nodes whose heartbeat this node saw last.",
            alive as u64,
        );
    }
    let _ = writeln!(out, "# HELP relaydeck_errors_total Error frames, error closes and error responses sent, by code.");
    let _ = writeln!(out, "# TYPE relaydeck_errors_total counter");
    for (qualified, count) in &stats.errors_by_code {
        let (dialect, code) = qualified.split_once(':').unwrap_or(("", qualified));
        let _ = writeln!(
            out,
            "relaydeck_errors_total{{dialect=\"{}\",code=\"{}\"}} {count}",
            label(dialect),
            label(code)
        );
    }
    let _ = writeln!(
        out,
        "# HELP relaydeck_channels Channels with at least one member."
    );
    let _ = writeln!(out, "# TYPE relaydeck_channels gauge");
    let _ = writeln!(out, "relaydeck_channels {channels}");
    let _ = writeln!(
        out,
        "# HELP relaydeck_app_status 1 for the current status of each app."
    );
    let _ = writeln!(out, "# TYPE relaydeck_app_status gauge");
    for (app, status) in &apps {
        let _ = writeln!(
            out,
            "relaydeck_app_status{{app=\"{}\",status=\"{}\"}} 1",
            label(app),
            status.id()
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenRequest {
    peer_id: Option<String>,
    ttl_seconds: Option<u64>,
    channels: Option<Vec<String>>,
    permissions: Option<Vec<PubsubAction>>,
}

const MAX_TOKEN_TTL_SECS: u64 = 86_400;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// `POST /v1/tokens` with `Authorization: Bearer <app secret key>` and an optional JSON body
/// `{peerId, ttlSeconds, channels, permissions}` → `{token, peerId, app, expiresAt}`.
pub async fn mint_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = bearer(&headers).map(str::to_owned) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer <secret key> is required",
        );
    };
    let app = shared.hub.config().apps.iter().find(|app| {
        app.secret_key
            .as_deref()
            .is_some_and(|key| bool::from(key.as_bytes().ct_eq(secret.as_bytes())))
    });
    let Some(app) = app else {
        return error(StatusCode::UNAUTHORIZED, "unknown secret key");
    };
    let request: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            // serde quotes a value of the wrong type whole: a megabyte string must not come
            // back in full, as no other refusal echoes more than the start of its input.
            Err(e) => {
                let problem = crate::text::one_line(&e.to_string(), 256);
                return error(StatusCode::BAD_REQUEST, format!("invalid body: {problem}"));
            }
        }
    };
    let ttl = request.ttl_seconds.unwrap_or(3600);
    if ttl == 0 || ttl > MAX_TOKEN_TTL_SECS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("ttlSeconds must be between 1 and {MAX_TOKEN_TTL_SECS}"),
        );
    }
    let peer_id = match request.peer_id {
        Some(id) => {
            if let Some(problem) = crate::protocol::pubsub::peer_id_problem(&id) {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid peerId: {problem}"),
                );
            }
            id
        }
        None => {
            use rand::RngExt as _;
            let mut rng = rand::rng();
            format!(
                "peer-{}",
                (0..4)
                    .map(|_| format!("{:02x}", rng.random::<u8>()))
                    .collect::<String>()
            )
        }
    };
    let exp = now_ms() / 1000 + ttl;
    let claims = token::Claims {
        sub: peer_id.clone(),
        app: app.id.clone(),
        exp,
        channels: request.channels,
        permissions: request.permissions,
    };
    let Some(secret) = app.secret_key.as_deref() else {
        return error(StatusCode::UNAUTHORIZED, "unknown secret key");
    };
    Json(json!({
        "token": token::mint(secret, &claims),
        "peerId": peer_id,
        "app": app.id,
        "expiresAt": exp,
    }))
    .into_response()
}

/// `DELETE /v1/peers/{id}` with the admin token: the same as an admin kick. `id` is the hub id
/// or the pub/sub `peerId` of the welcome, which is what a backend knows.
pub async fn kick_peer(
    State(shared): State<Arc<Shared>>,
    axum::extract::ConnectInfo(remote): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let failures = &shared.admission.auth_failures;
    if let Some(refused) = failures.refusal(remote.ip()) {
        return refused;
    }
    let presented = bearer(&headers).map(str::to_owned);
    if !token_matches(presented.as_deref(), &shared.admin_token) {
        failures.failed(remote.ip(), "DELETE /v1/peers");
        return error(StatusCode::UNAUTHORIZED, "a valid admin token is required");
    }
    if shared.readonly {
        return error(
            StatusCode::FORBIDDEN,
            "refused: this server is read-only (serve --readonly); nothing was kicked",
        );
    }
    // As on /admin: on record before it takes effect, refused when it cannot be.
    let ticket = match shared.persist.audit_intent("admin@http", "kick", &id).await {
        Ok(ticket) => ticket,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "refused: the audit log cannot be written ({e}), so the peer was not kicked"
                ),
            )
        }
    };
    let outcome = shared
        .hub
        .resolve_peer(&id, crate::catalog::Dialect::Pubsub)
        .and_then(|peer| shared.hub.kick(&peer, None))
        .map(|info| format!("closing {} with 4020 admin_disconnect", info.id));
    let recorded = match &outcome {
        Ok(message) => message.clone(),
        Err(message) => format!("refused: {message}"),
    };
    // The intent is on record and the action ran; the answer says when its outcome is not,
    // as the console's does.
    let unrecorded = match shared.persist.audit_outcome(&ticket, &recorded).await {
        Ok(()) => String::new(),
        Err(e) => {
            tracing::error!(error = %e, "could not append an outcome to the audit log");
            format!(" (its outcome could not be written to the audit log: {e})")
        }
    };
    match outcome {
        Ok(message) => Json(json!({
            "ok": true,
            "message": format!("{message}{unrecorded}"),
            "outcome_recorded": unrecorded.is_empty(),
        }))
        .into_response(),
        Err(message) => error(StatusCode::NOT_FOUND, format!("{message}{unrecorded}")),
    }
}
