//! The replay engine shared by `relaydeck replay` and the console: runs a session's steps
//! against a server over real sockets and reports each step as it completes.
//!
//! A session stops at its first step that does not pass: later steps depend on earlier ones
//! (a connection that should have been closed, a variable that was never captured).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::{Session, Step, DEFAULT_TIMEOUT_MS, MAX_SESSION_MS};
use crate::catalog::decode::{decode, DecodeError};
use crate::catalog::Dialect;
use crate::protocol::admin::{Direction, Event, ServerMessage};
use crate::protocol::routes::{ws_url, ADMIN};
use crate::wsclient::{self, ConnectError, Socket};

/// Where to replay: the server's `host:port` and, for admin steps, its admin token. Without
/// a token, admin steps fail without touching the server.
///
/// A server behind TLS is written `wss://host:port` in `addr`: one string keeps every
/// `Target { addr, admin_token }` written for a plain server meaning what it did.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub admin_token: Option<String>,
}

impl Target {
    /// From `ws://host:port`, `http://host:port`, `wss://…`, `https://…` or `host:port` (a
    /// path is ignored). A TLS URL without a port means 443.
    pub fn from_url(url: &str, admin_token: Option<String>) -> Result<Target, String> {
        let (secure, rest) = if let Some(rest) = url
            .strip_prefix("wss://")
            .or_else(|| url.strip_prefix("https://"))
        {
            (true, rest)
        } else {
            (
                false,
                url.strip_prefix("ws://")
                    .or_else(|| url.strip_prefix("http://"))
                    .unwrap_or(url),
            )
        };
        let addr = rest.split(['/', '?']).next().unwrap_or_default();
        if addr.is_empty() || addr.contains('@') {
            return Err(format!(
                "{url}: expected host:port, e.g. ws://127.0.0.1:7878"
            ));
        }
        let has_port = addr
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok() && !port.is_empty())
            && !addr.ends_with(']');
        let addr = match (secure, has_port) {
            (true, true) => format!("wss://{addr}"),
            (true, false) => format!("wss://{addr}:443"),
            (false, true) => addr.to_owned(),
            (false, false) => {
                return Err(format!(
                    "{url}: expected host:port, e.g. ws://127.0.0.1:7878"
                ))
            }
        };
        Ok(Target { addr, admin_token })
    }

    /// Whether the server is reached over TLS, and its `host:port`.
    fn parts(&self) -> (bool, &str) {
        match self.addr.strip_prefix("wss://") {
            Some(authority) => (true, authority),
            None => (false, &self.addr),
        }
    }

    /// `ws://host:port{path}`, or `wss://` for a server behind TLS.
    pub fn ws_url(&self, path: &str) -> String {
        match self.parts() {
            (true, authority) => format!("wss://{authority}{path}"),
            (false, authority) => ws_url(authority, path),
        }
    }

    /// `http://host:port{path}`, or `https://`.
    pub fn http_url(&self, path: &str) -> String {
        match self.parts() {
            (true, authority) => format!("https://{authority}{path}"),
            (false, authority) => format!("http://{authority}{path}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The step did what was expected; the lines say what was seen.
    Passed(Vec<String>),
    /// The server answered, but not as expected.
    Mismatch {
        expected: String,
        received: Vec<String>,
    },
    /// The step could not be carried out (connection refused, unknown connection name…).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// 1-based, in file order.
    pub number: usize,
    pub description: String,
    pub outcome: Outcome,
}

impl StepReport {
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Passed(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionReport {
    pub name: String,
    pub steps: Vec<StepReport>,
    /// Steps never run because an earlier one did not pass.
    pub skipped: usize,
    /// `dialect:code` of every error code the server sent during the session.
    pub codes_seen: Vec<String>,
}

impl SessionReport {
    pub fn passed(&self) -> bool {
        self.skipped == 0 && self.steps.iter().all(StepReport::passed)
    }
}

/// A frame a session sent or received, for a console that shows them as they pass.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenFrame {
    /// The session's name for the connection.
    pub conn: String,
    /// The connection's own address: the server lists the peer under it.
    pub local_addr: SocketAddr,
    /// `In` for what the session sent to the server, as the admin protocol counts it.
    pub direction: Direction,
    pub text: String,
}

struct Connection {
    socket: Socket,
    local_addr: SocketAddr,
    closed: bool,
}

/// The admin connection, opened on first use; it tracks which peer id the server gave each
/// local address so `${peer:conn}` can be resolved.
struct Admin {
    socket: Socket,
    peers_by_addr: HashMap<String, String>,
    next_id: u64,
}

struct Runner<'a> {
    target: &'a Target,
    dialect: Dialect,
    connections: HashMap<String, Connection>,
    admin: Option<Admin>,
    variables: BTreeMap<String, Value>,
    codes_seen: Vec<String>,
    http: Result<reqwest::Client, String>,
    frames: Option<tokio::sync::mpsc::UnboundedSender<SeenFrame>>,
}

/// Run one session. `observer` sees each step's report as soon as it is known.
pub async fn run(
    session: &Session,
    target: &Target,
    observer: &mut (dyn FnMut(&StepReport) + Send),
) -> SessionReport {
    run_streaming(session, target, observer, None).await
}

/// [`run`], also sending every WebSocket frame the session sends or receives to `frames`.
pub async fn run_streaming(
    session: &Session,
    target: &Target,
    observer: &mut (dyn FnMut(&StepReport) + Send),
    frames: Option<tokio::sync::mpsc::UnboundedSender<SeenFrame>>,
) -> SessionReport {
    let mut runner = Runner {
        target,
        dialect: session.header.dialect,
        connections: HashMap::new(),
        admin: None,
        variables: BTreeMap::new(),
        codes_seen: Vec::new(),
        http: crate::tls::http_client(),
        frames,
    };
    let mut reports = Vec::new();
    let mut skipped = 0;
    // Step timeouts are bounded one by one; this bounds what they cannot see, such as an
    // `http` step repeated against a server that answers slowly.
    let session_deadline = deadline(Some(MAX_SESSION_MS));
    for (index, step) in session.steps.iter().enumerate() {
        let outcome = match runner.resolve(step).await {
            Ok(resolved) => match timeout_at(session_deadline, runner.run_step(&resolved)).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Failed(format!(
                    "the session ran past its limit of {} s",
                    MAX_SESSION_MS / 1000
                )),
            },
            Err(message) => Outcome::Failed(message),
        };
        let report = StepReport {
            number: index + 1,
            description: step.describe(),
            outcome,
        };
        observer(&report);
        let passed = report.passed();
        reports.push(report);
        if !passed {
            skipped = session.steps.len() - index - 1;
            break;
        }
    }
    runner.shutdown().await;
    runner.codes_seen.dedup();
    SessionReport {
        name: session.header.name.clone(),
        steps: reports,
        skipped,
        codes_seen: runner.codes_seen,
    }
}

impl Runner<'_> {
    async fn shutdown(&mut self) {
        for (_, mut connection) in self.connections.drain() {
            if !connection.closed {
                let _ = connection.socket.close(None).await;
            }
        }
        if let Some(mut admin) = self.admin.take() {
            let _ = admin.socket.close(None).await;
        }
    }

    /// Substitute `${var}` and `${peer:conn}` in every string of the step.
    async fn resolve(&mut self, step: &Step) -> Result<Step, String> {
        let mut value = serde_json::to_value(step).map_err(|e| e.to_string())?;
        let mut peer_refs = Vec::new();
        collect_peer_refs(&value, &mut peer_refs);
        for conn in peer_refs {
            let key = format!("peer:{conn}");
            if !self.variables.contains_key(&key) {
                let id = self.peer_id_of(&conn).await?;
                self.variables.insert(key, Value::String(id));
            }
        }
        // The admin token goes to one place only: the `Authorization` header of a Flow stream
        // (an exported stream's credential, which the recorder does not keep), and only where
        // admin steps are allowed. Anywhere else `${admin_token}` is an unset variable, so it
        // can never reach a path, a frame or another endpoint.
        let token = match step {
            Step::Connect { path, headers, .. } if presents_admin_token(headers) => {
                if path.split('?').next() != Some(crate::protocol::routes::FLOW) {
                    return Err(format!(
                        "only a Flow stream ({}) may present the admin token",
                        crate::protocol::routes::FLOW
                    ));
                }
                if let Some(headers) = value.get_mut("headers").and_then(Value::as_object_mut) {
                    headers.remove("Authorization");
                }
                Some(self.target.admin_token.clone().ok_or(
                    "this connection presents the admin token (${admin_token}), and no admin token was allowed (relaydeck replay --url … --allow-admin --admin-token …)",
                )?)
            }
            _ => None,
        };
        substitute(&mut value, &self.variables)?;
        stringify_text_fields(&mut value);
        let mut resolved: Step = serde_json::from_value(value)
            .map_err(|e| format!("step after substitution is invalid: {e}"))?;
        if let (Some(token), Step::Connect { headers, .. }) = (token, &mut resolved) {
            headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
        }
        // A captured value may be anything the server sent: the limits hold for it too.
        resolved
            .validate()
            .map_err(|e| format!("step after substitution: {e}"))?;
        Ok(resolved)
    }

    async fn run_step(&mut self, step: &Step) -> Outcome {
        match step {
            Step::Connect {
                conn,
                path,
                headers,
                expect_status,
            } => self.connect(conn, path, headers, *expect_status).await,
            Step::Send {
                conn,
                frame,
                text,
                repeat,
                pad_to,
                binary,
            } => {
                let mut payload = match (frame, text) {
                    (Some(frame), _) => frame.to_string(),
                    (None, Some(text)) => text.clone(),
                    (None, None) => String::new(),
                };
                if let Some(size) = pad_to {
                    let missing = size.saturating_sub(payload.len());
                    payload.push_str(&" ".repeat(missing));
                }
                self.send(conn, payload, repeat.unwrap_or(1).max(1), *binary)
                    .await
            }
            Step::Expect {
                conn,
                code,
                matches,
                capture,
                timeout_ms,
            } => {
                let deadline = deadline(*timeout_ms);
                self.expect(conn, code.as_deref(), matches.as_ref(), capture, deadline)
                    .await
            }
            Step::ExpectClose {
                conn,
                code,
                reason,
                timeout_ms,
            } => {
                self.expect_close(conn, *code, reason.as_deref(), deadline(*timeout_ms))
                    .await
            }
            Step::Close { conn, code } => {
                let Some(connection) = self.connections.get_mut(conn) else {
                    return unknown_connection(conn);
                };
                let frame = code.map(|code| CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                });
                connection.closed = true;
                match connection.socket.close(frame).await {
                    Ok(()) => Outcome::Passed(vec![]),
                    Err(e) => Outcome::Failed(format!("closing {conn}: {e}")),
                }
            }
            Step::Http {
                method,
                path,
                headers,
                body,
                repeat,
                expect_status,
                expect_code,
                capture,
            } => {
                // Earlier repetitions only spend a rate limit; the last one is checked.
                for _ in 1..repeat.unwrap_or(1).max(1) {
                    let _ = self
                        .http(
                            method,
                            path,
                            headers,
                            body.as_ref(),
                            None,
                            None,
                            &BTreeMap::new(),
                        )
                        .await;
                }
                self.http(
                    method,
                    path,
                    headers,
                    body.as_ref(),
                    *expect_status,
                    expect_code.as_deref(),
                    capture,
                )
                .await
            }
            Step::Admin {
                command,
                expect_ok,
                capture,
            } => {
                self.admin(command, expect_ok.unwrap_or(true), capture)
                    .await
            }
            Step::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Outcome::Passed(vec![])
            }
        }
    }

    async fn connect(
        &mut self,
        conn: &str,
        path: &str,
        headers: &BTreeMap<String, String>,
        expect_status: Option<u16>,
    ) -> Outcome {
        if self.connections.contains_key(conn) {
            return Outcome::Failed(format!(
                "connection {conn} is already open; name the new one differently"
            ));
        }
        match open_socket(self.target, path, headers).await {
            Ok((socket, local_addr)) => {
                if let Some(status) = expect_status {
                    return Outcome::Mismatch {
                        expected: format!("the upgrade refused with HTTP {status}"),
                        received: vec!["the upgrade succeeded".to_owned()],
                    };
                }
                self.connections.insert(
                    conn.to_owned(),
                    Connection {
                        socket,
                        local_addr,
                        closed: false,
                    },
                );
                Outcome::Passed(vec![format!("connected from {local_addr}")])
            }
            Err(ConnectError::Refused { status, body }) => match expect_status {
                Some(expected) if expected == status => {
                    Outcome::Passed(vec![format!("refused with HTTP {status}")])
                }
                _ => Outcome::Mismatch {
                    expected: expect_status
                        .map(|s| format!("the upgrade refused with HTTP {s}"))
                        .unwrap_or_else(|| "a WebSocket connection".to_owned()),
                    received: vec![format!(
                        "HTTP {status} {}",
                        crate::text::one_line(&body, 120)
                    )],
                },
            },
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }

    async fn send(&mut self, conn: &str, payload: String, repeat: u32, binary: bool) -> Outcome {
        let Some(connection) = self.connections.get_mut(conn) else {
            return unknown_connection(conn);
        };
        if let Some(frames) = &self.frames {
            let text = if repeat > 1 {
                format!("{} (×{repeat})", crate::text::one_line(&payload, 512))
            } else {
                crate::text::one_line(&payload, 512)
            };
            let _ = frames.send(SeenFrame {
                conn: conn.to_owned(),
                local_addr: connection.local_addr,
                direction: Direction::In,
                text,
            });
        }
        let message = if binary {
            Message::Binary(payload.into_bytes().into())
        } else {
            Message::Text(payload.into())
        };
        for sent in 0..repeat {
            if let Err(error) = connection.socket.feed(message.clone()).await {
                // A server that closes mid-burst (rate limits) is what some sessions provoke;
                // the next step checks the close.
                return Outcome::Passed(vec![format!(
                    "the connection ended after {sent} of {repeat} sends: {error}"
                )]);
            }
        }
        match connection.socket.flush().await {
            Ok(()) => Outcome::Passed(vec![]),
            Err(error) => {
                Outcome::Passed(vec![format!("the connection ended while sending: {error}")])
            }
        }
    }

    async fn expect(
        &mut self,
        conn: &str,
        code: Option<&str>,
        matches: Option<&Value>,
        capture: &BTreeMap<String, String>,
        deadline: Instant,
    ) -> Outcome {
        let dialect = self.dialect;
        let Some(connection) = self.connections.get_mut(conn) else {
            return unknown_connection(conn);
        };
        let expected = match (code, matches) {
            (Some(code), _) => format!("an error {code}"),
            (None, Some(m)) => format!("a frame containing {m}"),
            (None, None) => "any frame".to_owned(),
        };
        let mut received = Vec::new();
        loop {
            let message = match timeout_at(deadline, connection.socket.next()).await {
                Err(_) => {
                    received.push("(nothing more before the timeout)".to_owned());
                    return Outcome::Mismatch { expected, received };
                }
                Ok(None) => {
                    received.push("(the connection ended without a close frame)".to_owned());
                    connection.closed = true;
                    return Outcome::Mismatch { expected, received };
                }
                Ok(Some(Err(error))) => {
                    received.push(format!("(receive failed: {error})"));
                    connection.closed = true;
                    return Outcome::Mismatch { expected, received };
                }
                Ok(Some(Ok(message))) => message,
            };
            let text = match message {
                Message::Text(text) => text.to_string(),
                Message::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Message::Close(frame) => {
                    connection.closed = true;
                    received.push(describe_close(dialect, frame.as_ref()));
                    return Outcome::Mismatch { expected, received };
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if let Some(frames) = &self.frames {
                let _ = frames.send(SeenFrame {
                    conn: conn.to_owned(),
                    local_addr: connection.local_addr,
                    direction: Direction::Out,
                    text: crate::text::one_line(&text, 512),
                });
            }
            let decoded = decode(&text, Some(dialect)).or_else(|_| decode(&text, None));
            let error_code = match &decoded {
                Ok(decoding) => decoding.best().map(|e| e.qualified()),
                Err(DecodeError::UnknownCode { dialect, code, .. }) => {
                    Some(format!("{dialect}:{code} (not in the catalog)"))
                }
                Err(_) => None,
            };
            if let Some(seen) = &error_code {
                self.codes_seen.push(seen.clone());
            }
            let line = summarise(&text, error_code.as_deref());
            match (code, error_code) {
                (Some(wanted), Some(seen)) => {
                    if code_matches(wanted, &seen)
                        && matches.is_none_or(|m| frame_contains(&text, m))
                    {
                        received.push(line);
                        return captured(&text, capture, &mut self.variables, received);
                    }
                    received.push(line);
                    return Outcome::Mismatch { expected, received };
                }
                (None, _) => {
                    if matches.is_some_and(|m| frame_contains(&text, m)) {
                        received.push(line);
                        return captured(&text, capture, &mut self.variables, received);
                    }
                    received.push(format!("{line} (skipped)"));
                }
                (Some(_), None) => received.push(format!("{line} (skipped)")),
            }
        }
    }

    async fn expect_close(
        &mut self,
        conn: &str,
        code: u16,
        reason: Option<&str>,
        deadline: Instant,
    ) -> Outcome {
        let dialect = self.dialect;
        let Some(connection) = self.connections.get_mut(conn) else {
            return unknown_connection(conn);
        };
        let expected = match reason {
            Some(reason) => format!("close {code} {reason}"),
            None => format!("close {code}"),
        };
        let mut received = Vec::new();
        loop {
            match timeout_at(deadline, connection.socket.next()).await {
                Err(_) => {
                    received.push("(no close before the timeout)".to_owned());
                    return Outcome::Mismatch { expected, received };
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    connection.closed = true;
                    received.push("(the connection ended without a close frame: 1006)".to_owned());
                    return Outcome::Mismatch { expected, received };
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    connection.closed = true;
                    let seen_code = frame.as_ref().map(|f| u16::from(f.code));
                    let seen_reason = frame
                        .as_ref()
                        .map(|f| f.reason.to_string())
                        .unwrap_or_default();
                    let description = describe_close(dialect, frame.as_ref());
                    if let Some(entry) = seen_code.and_then(|c| crate::catalog::close(dialect, c)) {
                        self.codes_seen.push(entry.qualified());
                    }
                    received.push(description);
                    let reason_ok = reason.is_none_or(|r| r == seen_reason);
                    return if seen_code == Some(code) && reason_ok {
                        Outcome::Passed(received)
                    } else {
                        Outcome::Mismatch { expected, received }
                    };
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Some(frames) = &self.frames {
                        let _ = frames.send(SeenFrame {
                            conn: conn.to_owned(),
                            local_addr: connection.local_addr,
                            direction: Direction::Out,
                            text: crate::text::one_line(&text, 512),
                        });
                    }
                    let decoded = decode(&text, Some(dialect)).ok();
                    if let Some(entry) = decoded.as_ref().and_then(|d| d.best()) {
                        self.codes_seen.push(entry.qualified());
                    }
                    let code = decoded
                        .as_ref()
                        .and_then(|d| d.best())
                        .map(|e| e.qualified());
                    received.push(format!("{} (skipped)", summarise(&text, code.as_deref())));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn http(
        &mut self,
        method: &str,
        path: &str,
        headers: &BTreeMap<String, String>,
        body: Option<&Value>,
        expect_status: Option<u16>,
        expect_code: Option<&str>,
        capture: &BTreeMap<String, String>,
    ) -> Outcome {
        let method = match reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
            Ok(method) => method,
            Err(_) => return Outcome::Failed(format!("{method:?} is not an HTTP method")),
        };
        let url = self.target.http_url(path);
        let http = match &self.http {
            Ok(http) => http,
            Err(error) => return Outcome::Failed(error.clone()),
        };
        let mut request = http
            .request(method, &url)
            .timeout(Duration::from_millis(DEFAULT_TIMEOUT_MS));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Outcome::Failed(format!("{url}: {error}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => return Outcome::Failed(format!("reading the body of {url}: {error}")),
        };
        let mut pasted = status.to_string();
        if let Some(retry_after) = &retry_after {
            pasted.push_str(&format!("\nRetry-After: {retry_after}"));
        }
        if !text.trim().is_empty() {
            pasted.push_str("\n\n");
            pasted.push_str(&text);
        }
        let line = format!(
            "HTTP {status}{} {}",
            retry_after
                .as_deref()
                .map(|r| format!(" Retry-After: {r}"))
                .unwrap_or_default(),
            crate::text::one_line(&text, 140)
        );
        let seen_code = if status >= 400 {
            decode(&pasted, Some(Dialect::TaloHttp))
                .ok()
                .and_then(|d| d.best())
                .map(|e| e.qualified())
        } else {
            None
        };
        if let Some(seen) = &seen_code {
            self.codes_seen.push(seen.clone());
        }
        let status_ok = expect_status.is_none_or(|s| s == status);
        let code_ok = expect_code.is_none_or(|wanted| {
            seen_code
                .as_deref()
                .is_some_and(|seen| code_matches(wanted, seen))
        });
        if status_ok && code_ok {
            captured(&text, capture, &mut self.variables, vec![line])
        } else {
            let mut expected = Vec::new();
            if let Some(status) = expect_status {
                expected.push(format!("HTTP {status}"));
            }
            if let Some(code) = expect_code {
                expected.push(format!("code {code}"));
            }
            let mut received = vec![line];
            if let Some(seen) = seen_code {
                received.push(format!("decoded as {seen}"));
            }
            Outcome::Mismatch {
                expected: expected.join(", "),
                received,
            }
        }
    }

    async fn ensure_admin(&mut self) -> Result<&mut Admin, String> {
        if self.admin.is_none() {
            let token = self.target.admin_token.clone().ok_or(
                "this session has admin steps and no admin token was allowed for them (relaydeck replay --url … --allow-admin --admin-token …)",
            )?;
            let headers = BTreeMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]);
            let (socket, _) = match open_socket(self.target, ADMIN, &headers).await {
                Ok(opened) => opened,
                Err(ConnectError::Refused { status, .. }) => {
                    return Err(format!(
                        "the admin endpoint refused the token (HTTP {status})"
                    ))
                }
                Err(error) => return Err(error.to_string()),
            };
            self.admin = Some(Admin {
                socket,
                peers_by_addr: HashMap::new(),
                next_id: 1,
            });
        }
        self.admin
            .as_mut()
            .ok_or_else(|| "admin connection unavailable".to_owned())
    }

    async fn peer_id_of(&mut self, conn: &str) -> Result<String, String> {
        let local = self
            .connections
            .get(conn)
            .map(|c| c.local_addr.to_string())
            .ok_or_else(|| format!("${{peer:{conn}}}: there is no connection named {conn}"))?;
        let admin = self.ensure_admin().await?;
        let deadline = deadline(None);
        loop {
            if let Some(id) = admin.peers_by_addr.get(&local) {
                return Ok(id.clone());
            }
            admin.read_one(deadline).await.map_err(|e| {
                format!("${{peer:{conn}}}: the server never listed a peer from {local}: {e}")
            })?;
        }
    }

    async fn admin(
        &mut self,
        command: &Value,
        expect_ok: bool,
        capture: &BTreeMap<String, String>,
    ) -> Outcome {
        let admin = match self.ensure_admin().await {
            Ok(admin) => admin,
            Err(message) => return Outcome::Failed(message),
        };
        let id = admin.next_id;
        admin.next_id += 1;
        let mut envelope = command.clone();
        if let Some(object) = envelope.as_object_mut() {
            object.insert("id".to_owned(), Value::from(id));
        }
        if let Err(error) = admin
            .socket
            .send(Message::Text(envelope.to_string().into()))
            .await
        {
            return Outcome::Failed(format!("sending the admin command: {error}"));
        }
        let deadline = deadline(None);
        loop {
            match admin.read_one(deadline).await {
                Err(error) => {
                    return Outcome::Failed(format!(
                        "waiting for the result of admin command {id}: {error}"
                    ))
                }
                Ok(Some(result)) if result.id == id => {
                    let line = format!("result ok={} {}", result.ok, result.message);
                    if result.ok != expect_ok {
                        return Outcome::Mismatch {
                            expected: format!("ok={expect_ok}"),
                            received: vec![line],
                        };
                    }
                    let data = result
                        .data
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "{}".to_owned());
                    return captured(&data, capture, &mut self.variables, vec![line]);
                }
                Ok(_) => {}
            }
        }
    }
}

impl Admin {
    /// Read one admin message, keeping the address → peer map current; returns a result.
    async fn read_one(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<crate::protocol::admin::CommandResult>, String> {
        let message = match timeout_at(deadline, self.socket.next()).await {
            Err(_) => return Err("timed out".to_owned()),
            Ok(None) => return Err("the admin connection ended".to_owned()),
            Ok(Some(Err(error))) => return Err(error.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        let Message::Text(text) = message else {
            return Ok(None);
        };
        let parsed: ServerMessage =
            serde_json::from_str(&text).map_err(|e| format!("unreadable admin message: {e}"))?;
        match parsed {
            ServerMessage::Snapshot { snapshot, .. } => {
                self.peers_by_addr = snapshot
                    .peers
                    .iter()
                    .map(|p| (p.addr.clone(), p.id.clone()))
                    .collect();
            }
            ServerMessage::Delta { event, .. } => match event {
                Event::PeerConnected { peer } | Event::PeerUpdated { peer } => {
                    self.peers_by_addr.insert(peer.addr, peer.id);
                }
                Event::PeerClosed { peer, .. } => self.peers_by_addr.retain(|_, id| *id != peer),
                _ => {}
            },
            ServerMessage::Result(result) => return Ok(Some(result)),
        }
        Ok(None)
    }
}

/// Open a session's connection through the shared client, with room for the oversized frames
/// a session may provoke from the server.
async fn open_socket(
    target: &Target,
    path: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(Socket, SocketAddr), ConnectError> {
    let mut request = wsclient::Request::new(target.ws_url(path))
        .timeout(Duration::from_millis(DEFAULT_TIMEOUT_MS))
        .large_messages();
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
        .connect()
        .await
        .map(|client| (client.socket, client.local_addr))
}

fn deadline(timeout_ms: Option<u64>) -> Instant {
    let now = Instant::now();
    let wait = Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    // Session files are checked against MAX_TIMEOUT_MS; this keeps any other caller from
    // overflowing the clock.
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_millis(MAX_SESSION_MS))
}

fn unknown_connection(conn: &str) -> Outcome {
    Outcome::Failed(format!(
        "there is no open connection named {conn}; add a connect step first"
    ))
}

/// `wanted` may be bare (`ROOM_FULL`) or qualified (`signal-fish:ROOM_FULL`).
fn code_matches(wanted: &str, seen_qualified: &str) -> bool {
    if wanted.contains(':')
        && wanted
            .split_once(':')
            .is_some_and(|(d, _)| d.parse::<Dialect>().is_ok())
    {
        return wanted.eq_ignore_ascii_case(seen_qualified);
    }
    seen_qualified
        .split_once(':')
        .is_some_and(|(_, code)| code.eq_ignore_ascii_case(wanted))
}

fn describe_close(dialect: Dialect, frame: Option<&CloseFrame>) -> String {
    match frame {
        None => "close without a code (1005)".to_owned(),
        Some(frame) => {
            let code = u16::from(frame.code);
            let title = crate::catalog::close(dialect, code)
                .map(|e| format!(" — {} ({})", e.title, e.qualified()))
                .unwrap_or_default();
            format!("close {code} {}{title}", frame.reason)
        }
    }
}

fn summarise(text: &str, code: Option<&str>) -> String {
    let frame = crate::text::one_line(text, 140);
    match code {
        Some(code) => format!("{frame}  ⇒ {code}"),
        None => frame,
    }
}

fn captured(
    text: &str,
    capture: &BTreeMap<String, String>,
    variables: &mut BTreeMap<String, Value>,
    mut lines: Vec<String>,
) -> Outcome {
    if capture.is_empty() {
        return Outcome::Passed(lines);
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Outcome::Mismatch {
            expected: format!(
                "a JSON body to capture {}",
                capture.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            received: lines,
        };
    };
    for (name, pointer) in capture {
        match value.pointer(pointer) {
            Some(Value::Null) | None => {
                lines.push(format!("nothing at {pointer} to capture as {name}"));
                return Outcome::Mismatch {
                    expected: format!("a value at {pointer}"),
                    received: lines,
                };
            }
            Some(found) => {
                variables.insert(name.clone(), found.clone());
            }
        }
    }
    Outcome::Passed(lines)
}

/// Does the frame contain `expected` (objects: every expected key, recursively; arrays and
/// scalars: equal)?
fn frame_contains(text: &str, expected: &Value) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|actual| contains(&actual, expected))
}

pub(crate) fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|a| contains(a, value))),
        (Value::Array(actual), Value::Array(expected)) => {
            actual.len() == expected.len()
                && actual.iter().zip(expected).all(|(a, e)| contains(a, e))
        }
        (actual, expected) => actual == expected,
    }
}

fn collect_peer_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${peer:") {
                let after = &rest[start + 7..];
                match after.find('}') {
                    Some(end) => {
                        out.push(after[..end].to_owned());
                        rest = &after[end + 1..];
                    }
                    None => break,
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_peer_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_peer_refs(v, out)),
        _ => {}
    }
}

/// The `Authorization` header value of a Flow stream that presents the replay target's admin
/// token (exported streams do: the credential the peer used is not recorded).
pub const ADMIN_BEARER: &str = "Bearer ${admin_token}";

/// Whether a `connect` step presents the admin token.
pub fn presents_admin_token(headers: &BTreeMap<String, String>) -> bool {
    headers
        .get("Authorization")
        .is_some_and(|value| value == ADMIN_BEARER)
}

/// Replace `${name}` in every string. A string that is exactly one `${name}` becomes the
/// captured value itself, keeping its JSON type (an alias id stays a number).
pub(crate) fn substitute(
    value: &mut Value,
    variables: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let lookup = |name: &str| {
        variables.get(name).ok_or_else(|| {
            format!("variable ${{{name}}} is not set; capture it in an earlier step")
        })
    };
    match value {
        Value::String(s)
            if s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1 =>
        {
            *value = lookup(&s[2..s.len() - 1])?.clone();
            Ok(())
        }
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
                match lookup(&after[..end])? {
                    Value::String(text) => out.push_str(text),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| substitute(v, variables)),
        Value::Object(map) => map.values_mut().try_for_each(|v| substitute(v, variables)),
        _ => Ok(()),
    }
}

/// Fields that are text in every step: a captured number substituted whole into one of them
/// is written as text there (an alias id in a header or a path).
fn stringify_text_fields(step: &mut Value) {
    let Some(object) = step.as_object_mut() else {
        return;
    };
    for key in ["path", "text", "conn", "method", "reason", "expect_code"] {
        if let Some(value) = object.get_mut(key) {
            if !value.is_string() && !value.is_null() {
                *value = Value::String(value.to_string());
            }
        }
    }
    if let Some(Value::Object(headers)) = object.get_mut("headers") {
        for value in headers.values_mut() {
            if !value.is_string() {
                *value = Value::String(value.to_string());
            }
        }
    }
}
