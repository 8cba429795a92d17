//! Talo's HTTP API on the server's port: socket tickets, identify, socket tokens, player login.
//!
//! Errors follow Talo's documentation: 401 without a Bearer access key; 403
//! `{"message":"Missing access key scope(s): …"}`; 400 `{"errors":{field:[…]}}`; 429 with
//! `Retry-After` (a fixed one-minute window: 100 requests per player, 20 on the authentication
//! endpoints); 401 `MISSING_SESSION` / `INVALID_SESSION` for `talo` players without a valid
//! `x-talo-session`; 401 `INVALID_CREDENTIALS` for a failed login.

// Handlers answer with a `Response` by value, as axum expects; the early returns carry the same
// type rather than boxing it only to box it again.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use super::entities::{object, validation_errors, Ordered};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{Alias, Talo};
use crate::catalog::Dialect;
use crate::server::access::bearer;
use crate::server::Shared;

fn respond(shared: &Shared, status: StatusCode, code: &str, body: impl Into<Ordered>) -> Response {
    let body: Ordered = body.into();
    shared.hub.record_http_error(
        Dialect::TaloHttp,
        code,
        format!(
            "{} {}",
            status.as_u16(),
            serde_json::to_string(&body).unwrap_or_default()
        ),
    );
    (status, Json(body)).into_response()
}

/// What every endpoint checks first: the access key and the scope the endpoint needs, then
/// the caller's rate window. Returns the key's app.
///
/// Talo counts the rate first; relaydeck authorizes first, so that a client without a valid
/// key can neither fill the rate table with names of its choosing nor spend a real player's
/// window. Windows are kept per app, so the same identifier in two games is two callers.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    caller: &str,
    auth_endpoint: bool,
    scope: Option<&str>,
) -> Result<String, Response> {
    let app = authorize(shared, headers, scope)?;
    if let Some(limited) = rate_limited(shared, auth_endpoint, &format!("{app}\u{0}{caller}")) {
        return Err(limited);
    }
    Ok(app)
}

/// The present values of required fields `(name, value, where)`, or the 400 naming every
/// missing one.
fn require<'a, const N: usize>(
    shared: &Shared,
    fields: [(&str, Option<&'a str>, &str); N],
) -> Result<[&'a str; N], Response> {
    let missing: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(_, value, _)| value.is_none())
        .map(|(name, _, place)| (*name, *place))
        .collect();
    if !missing.is_empty() {
        return Err(missing_fields(shared, &missing));
    }
    Ok(fields.map(|(_, value, _)| value.unwrap_or_default()))
}

fn missing_fields(shared: &Shared, fields: &[(&str, &str)]) -> Response {
    let errors = fields
        .iter()
        .map(|(field, place)| {
            (
                (*field).to_owned(),
                format!("{field} is missing from the request {place}"),
            )
        })
        .collect();
    respond(
        shared,
        StatusCode::BAD_REQUEST,
        "400",
        validation_errors(errors),
    )
}

/// The app of the Bearer access key, if it has `scope`.
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    scope: Option<&str>,
) -> Result<String, Response> {
    // koa-jwt's header check: a header that is not `<Bearer> <token>` (one space, the scheme
    // in any case) has its own message; only a missing or empty header is the generic one.
    let raw = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty());
    let well_formed = raw.as_deref().and_then(|raw| {
        let mut parts = raw.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(scheme), Some(token), None) if scheme.eq_ignore_ascii_case("Bearer") => {
                Some(token.to_owned())
            }
            _ => None,
        }
    });
    if raw.is_some() && well_formed.is_none() {
        return Err(respond(
            shared,
            StatusCode::UNAUTHORIZED,
            "401",
            json!({"message": "Bad Authorization header format. Format is \"Authorization: Bearer <token>\""}),
        ));
    }
    let Some(key) = well_formed else {
        return Err(respond(
            shared,
            StatusCode::UNAUTHORIZED,
            "401",
            // koa-jwt's words for a missing token (TaloDev/backend runs it on every API route,
            // `src/middleware/api-route-middleware.ts`); the error middleware sends only the
            // message.
            json!({"message": "Authentication Error"}),
        ));
    };
    let Some((app, _, access_key)) = Talo::access_key(shared.hub.config(), &key) else {
        return Err(respond(
            shared,
            StatusCode::UNAUTHORIZED,
            "401",
            // A token that fails verification is a JWT error, which upstream's error
            // middleware (`src/middleware/error-middleware.ts`) answers with this message.
            json!({"message": "Please provide a valid token in the Authorization header"}),
        ));
    };
    // `scope` lists every scope the route needs, ", "-separated as Talo's policy middleware
    // names the missing ones.
    if let Some(scope) = scope {
        let missing: Vec<&str> = scope
            .split(", ")
            .filter(|needed| !access_key.has_scope(needed))
            .collect();
        if !missing.is_empty() {
            return Err(respond(
                shared,
                StatusCode::FORBIDDEN,
                "403",
                json!({"message": format!("Missing access key scope(s): {}", missing.join(", "))}),
            ));
        }
    }
    Ok(app.to_owned())
}

fn rate_limited(shared: &Shared, auth_endpoint: bool, caller: &str) -> Option<Response> {
    let retry_after = shared.talo.rate_limit(auth_endpoint, caller).err()?;
    shared.hub.record_http_error(
        Dialect::TaloHttp,
        "429",
        format!("429 Retry-After: {retry_after}"),
    );
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            // `ctx.throw(429)` (`src/middleware/limiter-middleware.ts`): the status text. Upstream
            // always says Retry-After 60; the seed documents the seconds left in the window.
            Json(json!({"message": "Too Many Requests"})),
        )
            .into_response(),
    )
}

/// The caller a rate window is kept for: a player's identifier when it is one this server
/// would store, else the address, so that a key is never longer than an identifier.
fn rate_caller(identifier: Option<&str>, addr: SocketAddr) -> String {
    match identifier {
        Some(identifier) if identifier.chars().count() <= super::MAX_IDENTIFIER_CHARS => {
            identifier.to_owned()
        }
        _ => addr.ip().to_string(),
    }
}

/// The 400 for fields longer than the server takes, `(name, value, limit in characters)`.
fn too_long(shared: &Shared, fields: &[(&str, &str, usize)]) -> Option<Response> {
    let errors: Vec<(String, String)> = fields
        .iter()
        .filter(|(_, value, limit)| value.chars().count() > *limit)
        .map(|(field, _, limit)| {
            (
                (*field).to_owned(),
                format!("{field} must be at most {limit} characters"),
            )
        })
        .collect();
    (!errors.is_empty()).then(|| {
        respond(
            shared,
            StatusCode::BAD_REQUEST,
            "400",
            validation_errors(errors),
        )
    })
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `talo` players must show their session; others need not.
fn check_session(shared: &Shared, headers: &HeaderMap, alias: &Alias) -> Result<(), Response> {
    if alias.service != "talo" {
        return Ok(());
    }
    match header_value(headers, "x-talo-session") {
        None => Err(respond(
            shared,
            StatusCode::UNAUTHORIZED,
            "MISSING_SESSION",
            object([
                (
                    "message",
                    "The x-talo-session header is required for this player".into(),
                ),
                ("errorCode", "MISSING_SESSION".into()),
            ]),
        )),
        Some(session) if !shared.talo.session_valid(alias.id, session) => Err(respond(
            shared,
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION",
            object([
                ("message", "The x-talo-session header is invalid".into()),
                ("errorCode", "INVALID_SESSION".into()),
            ]),
        )),
        Some(_) => Ok(()),
    }
}

/// `POST /v1/socket-tickets` → `{"ticket"}`, single use, valid five minutes.
pub async fn socket_ticket(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let app = match admit(&shared, &headers, &addr.ip().to_string(), true, None) {
        Ok(app) => app,
        Err(response) => return response,
    };
    let key = bearer(&headers).map(str::to_owned).unwrap_or_default();
    Json(json!({ "ticket": shared.talo.issue_ticket(&app, &key) })).into_response()
}

/// `GET /v1/players/identify?service=&identifier=` → `{alias, socketToken}`.
pub async fn identify(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let service = query
        .get("service")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let identifier = query
        .get("identifier")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let caller = rate_caller(identifier, addr);
    let app = match admit(&shared, &headers, &caller, true, Some("read:players")) {
        Ok(app) => app,
        Err(response) => return response,
    };
    // Talo's schema tells an empty value from a missing one (`identify.ts`).
    // Each field's problem, in the schema's order: empty, or missing when another is empty.
    if ["service", "identifier"]
        .iter()
        .any(|field| query.get(*field).is_some_and(String::is_empty))
    {
        let errors = ["service", "identifier"]
            .into_iter()
            .filter_map(|field| match query.get(field) {
                Some(value) if value.is_empty() => Some((
                    field.to_owned(),
                    format!("Invalid {field}, must be a non-empty string"),
                )),
                Some(_) => None,
                None => Some((
                    field.to_owned(),
                    format!("{field} is missing from the request query"),
                )),
            })
            .collect();
        return respond(
            &shared,
            StatusCode::BAD_REQUEST,
            "400",
            validation_errors(errors),
        );
    }
    let [service, identifier] = match require(
        &shared,
        [
            ("service", service, "query"),
            ("identifier", identifier, "query"),
        ],
    ) {
        Ok(values) => values,
        Err(response) => return response,
    };
    if let Some(refused) = too_long(
        &shared,
        &[
            ("service", service, super::MAX_IDENTIFIER_CHARS),
            ("identifier", identifier, super::MAX_IDENTIFIER_CHARS),
        ],
    ) {
        return refused;
    }
    if let Some(ban) = shared.hub.bans().identity(Some(&app), identifier) {
        return crate::server::bans::refuse_http(&shared.hub, &ban);
    }
    let alias = match shared.talo.identify_checked(&app, service, identifier) {
        Ok(alias) => alias,
        // `src/routes/api/player/identify.ts`: talo aliases are only made by the auth API.
        Err(super::IdentifyRefusal::NotFound) => {
            return respond(
                &shared,
                StatusCode::NOT_FOUND,
                "404",
                json!({"message": "Player not found: Talo aliases must be created using the /v1/players/auth API"}),
            )
        }
        Err(super::IdentifyRefusal::GameFull) => {
            return respond(
                &shared,
                StatusCode::BAD_REQUEST,
                "400",
                json!({"errors": {"identifier": [format!(
                    "this game has as many players as this server creates ({})",
                    super::MAX_CREATED_PLAYERS_PER_APP
                )]}}),
            )
        }
    };
    if let Err(response) = check_session(&shared, &headers, &alias) {
        return response;
    }
    let token = shared.talo.new_socket_token(alias.id);
    let auth = shared.talo.auth(&alias);
    Json(object([
        ("alias", alias.entity(None, auth)),
        ("socketToken", token.into()),
    ]))
    .into_response()
}

/// `POST /v1/players/socket-token` with `x-talo-alias` → `{socketToken}`.
pub async fn socket_token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let alias_header = header_value(&headers, "x-talo-alias").map(str::to_owned);
    // An alias id is a number: anything else is keyed by the address, never by its text.
    let caller = match alias_header.as_deref().and_then(|a| a.parse::<u64>().ok()) {
        Some(id) => format!("alias {id}"),
        None => addr.ip().to_string(),
    };
    let app = match admit(&shared, &headers, &caller, false, Some("write:players")) {
        Ok(app) => app,
        Err(response) => return response,
    };
    let Some(alias_header) = alias_header else {
        return missing_fields(&shared, &[("x-talo-alias", "headers")]);
    };
    // Talo's header schema: digits only (`playerAliasHeaderSchema.ts`).
    let digits = !alias_header.is_empty() && alias_header.bytes().all(|b| b.is_ascii_digit());
    let Some(alias_id) = alias_header.parse::<u64>().ok().filter(|_| digits) else {
        return respond(
            &shared,
            StatusCode::BAD_REQUEST,
            "400",
            json!({"errors": {"x-talo-alias": ["x-talo-alias header must be a numeric string"]}}),
        );
    };
    // `player-alias-middleware.ts`: an alias the game does not have is 404.
    let Some(alias) = shared.talo.alias(&app, alias_id) else {
        return respond(
            &shared,
            StatusCode::NOT_FOUND,
            "404",
            json!({"message": "Player not found"}),
        );
    };
    // A banned player must not get a new socket token from an alias id it already knows.
    if let Some(ban) = shared.hub.bans().identity(Some(&app), &alias.identifier) {
        return crate::server::bans::refuse_http(&shared.hub, &ban);
    }
    if let Err(response) = check_session(&shared, &headers, &alias) {
        return response;
    }
    Json(json!({ "socketToken": shared.talo.new_socket_token(alias.id) })).into_response()
}

/// `POST /v1/players/auth/login` `{identifier, password}` → `{alias, sessionToken, socketToken}`.
pub async fn login(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let identifier = body
        .get("identifier")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let caller = rate_caller(identifier, addr);
    // Login needs both player scopes upstream (`player-auth/login.ts`).
    let app = match admit(
        &shared,
        &headers,
        &caller,
        true,
        Some("read:players, write:players"),
    ) {
        Ok(app) => app,
        Err(response) => return response,
    };
    let [identifier, password] = match require(
        &shared,
        [
            ("identifier", identifier, "body"),
            ("password", password, "body"),
        ],
    ) {
        Ok(values) => values,
        Err(response) => return response,
    };
    if let Some(refused) = too_long(
        &shared,
        &[
            ("identifier", identifier, super::MAX_IDENTIFIER_CHARS),
            ("password", password, super::MAX_PASSWORD_CHARS),
        ],
    ) {
        return refused;
    }
    if let Some(ban) = shared.hub.bans().identity(Some(&app), identifier) {
        return crate::server::bans::refuse_http(&shared.hub, &ban);
    }
    let verifier = shared.clone();
    let (identifier, password) = (identifier.to_owned(), password.to_owned());
    let verified =
        tokio::task::spawn_blocking(move || verifier.talo.login(&app, &identifier, &password))
            .await
            // The verifier only panics on a bug; treat that like a failed login rather than crash.
            .unwrap_or(None);
    match verified {
        Some((alias, session)) => {
            let socket_token = shared.talo.new_socket_token(alias.id);
            let auth = shared.talo.auth(&alias);
            Json(object([
                ("alias", alias.entity(None, auth)),
                ("sessionToken", session.into()),
                ("socketToken", socket_token.into()),
            ]))
            .into_response()
        }
        None => respond(
            &shared,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            object([
                ("message", "Incorrect identifier or password".into()),
                ("errorCode", "INVALID_CREDENTIALS".into()),
            ]),
        ),
    }
}
