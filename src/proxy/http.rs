//! Plain HTTP requests on the proxy's address go to the same path on the upstream, with
//! their method, headers and body; the upstream's answer comes back as it is.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Upstream;
use crate::catalog::Dialect;
use crate::protocol::routes;
use crate::server::hub::Hub;

/// The largest request or response body the proxy carries.
const MAX_BODY_BYTES: usize = 4 << 20;

/// Headers that concern one hop only (RFC 9110 §7.6.1), and those the HTTP client sets.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The dialect of an HTTP API whose error answers the proxy records, by path.
fn dialect_of(path: &str) -> Option<Dialect> {
    match path {
        routes::TALO_SOCKET_TICKETS
        | routes::TALO_IDENTIFY
        | routes::TALO_SOCKET_TOKEN
        | routes::TALO_LOGIN => Some(Dialect::TaloHttp),
        _ => None,
    }
}

/// Record an error answer of a known HTTP API as the server records its own: the code the
/// catalog's decoder reads in the body, else the status.
fn record_error(hub: &Hub, dialect: Dialect, status: StatusCode, body: &[u8]) {
    let body = String::from_utf8_lossy(body);
    let shown = format!("{} {body}", status.as_u16());
    let code = crate::catalog::decode::decode(&body, Some(dialect))
        .ok()
        .and_then(|d| d.code)
        .filter(|code| crate::catalog::get(dialect, code).is_some())
        .unwrap_or_else(|| status.as_u16().to_string());
    hub.record_http_error(dialect, &code, shown);
}

pub async fn forward(
    hub: &Hub,
    client: &reqwest::Client,
    upstream: &Upstream,
    request: Request,
) -> Response {
    let dialect = dialect_of(request.uri().path());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
        }
    };
    let mut outgoing = client.request(parts.method, upstream.http_url(&path_and_query));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the upstream could not be reached: {error}\n"),
            )
                .into_response()
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = match answer.bytes().await {
        Ok(body) if body.len() <= MAX_BODY_BYTES => body,
        Ok(_) => return (StatusCode::BAD_GATEWAY, "upstream answer too large\n").into_response(),
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the upstream's answer broke off: {error}\n"),
            )
                .into_response()
        }
    };
    if let Some(dialect) = dialect.filter(|_| status.is_client_error() || status.is_server_error())
    {
        record_error(hub, dialect, status, &body);
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
