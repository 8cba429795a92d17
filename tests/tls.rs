//! TLS end to end over real sockets on 127.0.0.1, with self-signed certificates made here:
//! https and wss against `serve --tls-cert`, every client of the project trusting it through
//! `--ca-file`, a certificate renewed under an open connection, and a clear answer (not a
//! hang) for a plain client on a TLS port and a TLS client on a plain port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{TestServer, RECEIVE_TIMEOUT};
use relaydeck::catalog::Dialect;
use relaydeck::cli::{Cli, Command as Sub};
use relaydeck::console::app::{Connection, Msg};
use relaydeck::protocol::admin::{
    Command as AdminCommand, CommandEnvelope, InjectTarget, ServerMessage,
};
use relaydeck::server::config::Config;
use relaydeck::wsclient::{ConnectError, Received, Request};
use serde_json::json;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn write_pair(dir: &Path, name: &str) -> Pair {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Pair {
        cert,
        key,
        der: made.cert.der().to_vec(),
    }
}

/// The demo server over TLS with `pair`, whose certificate every client in this process
/// trusts from now on.
async fn tls_server(pair: &Pair) -> TestServer {
    relaydeck::tls::add_ca_file(&pair.cert).unwrap();
    let mut config = Config::demo();
    config.tls.cert = Some(pair.cert.clone());
    config.tls.key = Some(pair.key.clone());
    TestServer::start(config).await
}

async fn authenticated_signal_fish(url: &str) -> relaydeck::wsclient::Client {
    let mut client = Request::new(url)
        .timeout(RECEIVE_TIMEOUT)
        .connect()
        .await
        .unwrap();
    client
        .send_text(json!({"type": "Authenticate", "data": {"app_id": "demo"}}).to_string())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + RECEIVE_TIMEOUT;
    match client.receive_until(deadline).await {
        Some(Received::Text(text)) => {
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(frame["type"], "Authenticated", "{frame}");
        }
        other => panic!("no Authenticated: {other:?}"),
    }
    client
}

/// A ping the Signal Fish dialect answers, to show a connection still carries frames.
async fn still_answers(client: &mut relaydeck::wsclient::Client) {
    client
        .send_text(json!({"type": "Ping"}).to_string())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + RECEIVE_TIMEOUT;
    loop {
        match client.receive_until(deadline).await {
            Some(Received::Text(text)) if text.contains("Pong") => return,
            // Greetings (ProtocolInfo) may come first.
            Some(Received::Text(_)) => {}
            other => panic!("no answer on the open connection: {other:?}"),
        }
    }
}

/// The certificate a fresh handshake with `addr` is given.
async fn presented_certificate(addr: std::net::SocketAddr) -> Vec<u8> {
    let config = relaydeck::tls::client_config().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        RECEIVE_TIMEOUT,
        relaydeck::tls::connect(config, "127.0.0.1", tcp),
    )
    .await
    .unwrap()
    .unwrap();
    let (_, session) = tls.get_ref();
    session.peer_certificates().unwrap()[0].as_ref().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_health_and_a_signal_fish_client_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let server = tls_server(&pair).await;
    let http = relaydeck::tls::http_client().unwrap();
    let health = http
        .get(format!("https://{}/health", server.addr))
        .timeout(RECEIVE_TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let mut client = authenticated_signal_fish(&format!("wss://{}/v2/ws", server.addr)).await;
    still_answers(&mut client).await;
    client.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_serves_new_connections_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let server = tls_server(&pair).await;
    let mut open = authenticated_signal_fish(&format!("wss://{}/v2/ws", server.addr)).await;
    assert_eq!(presented_certificate(server.addr).await, pair.der);

    let renewed = write_pair(dir.path(), "renewed");
    relaydeck::tls::add_ca_file(&renewed.cert).unwrap();
    std::fs::copy(&renewed.cert, &pair.cert).unwrap();
    std::fs::copy(&renewed.key, &pair.key).unwrap();
    let tls = server.server.as_ref().unwrap().tls.clone().unwrap();
    tls.reload().unwrap();

    assert_eq!(presented_certificate(server.addr).await, renewed.der);
    still_answers(&mut open).await;

    // A broken renewal leaves the pair in use alone.
    std::fs::write(&pair.key, "not a key").unwrap();
    assert!(tls.reload().unwrap_err().contains("private key"));
    assert_eq!(presented_certificate(server.addr).await, renewed.der);
    still_answers(&mut open).await;
    open.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_scheme_for_a_port_is_said_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let secure = tls_server(&pair).await;
    let plain = TestServer::demo().await;

    let on_tls = Request::new(format!("ws://{}/v2/ws", secure.addr))
        .timeout(RECEIVE_TIMEOUT)
        .connect()
        .await;
    match on_tls {
        Err(ConnectError::Refused { status: 400, body }) => {
            assert!(body.contains("speaks TLS"), "{body}")
        }
        other => panic!("a plain client on a TLS port: {:?}", other.err()),
    }
    let plain_http = relaydeck::tls::http_client()
        .unwrap()
        .get(format!("http://{}/health", secure.addr))
        .timeout(RECEIVE_TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(plain_http.status(), 400);

    let on_plain = Request::new(format!("wss://{}/v2/ws", plain.addr))
        .timeout(RECEIVE_TIMEOUT)
        .connect()
        .await;
    match on_plain {
        Err(ConnectError::Failed(error)) => {
            assert!(error.contains("did not answer in TLS"), "{error}")
        }
        other => panic!("a TLS client on a plain port: {:?}", other.err()),
    }
    let https_on_plain = relaydeck::tls::http_client()
        .unwrap()
        .get(format!("https://{}/health", plain.addr))
        .timeout(RECEIVE_TIMEOUT)
        .send()
        .await;
    assert!(https_on_plain.is_err());
    secure.stop().await;
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let mut config = Config::demo();
    config.tls.cert = Some(pair.cert.clone());
    config.tls.key = Some(pair.key.clone());
    let server = TestServer::start(config).await;
    // Trusting only some other certificate: this server's is unknown.
    let other = write_pair(dir.path(), "other");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other.der.clone().into()).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(relaydeck::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let refused = Request::new(format!("wss://{}/v2/ws", server.addr))
        .tls(config)
        .timeout(RECEIVE_TIMEOUT)
        .connect()
        .await;
    match refused {
        Err(ConnectError::Failed(error)) => assert!(error.contains("--ca-file"), "{error}"),
        other => panic!("{:?}", other.err()),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_link_and_a_probe_work_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let server = tls_server(&pair).await;
    let url = format!("wss://{}/admin", server.addr);
    let (client, _) = relaydeck::console::net::reach(
        &url,
        vec![relaydeck::console::net::TokenSource {
            from: "test".into(),
            token: server.token.clone(),
        }],
    )
    .await
    .unwrap();
    let mut link = relaydeck::console::Link::connected(client, url, server.token.clone());
    let deadline = tokio::time::Instant::now() + RECEIVE_TIMEOUT;
    let mut connected = false;
    let snapshot = loop {
        match tokio::time::timeout_at(deadline, link.incoming.recv()).await {
            Ok(Some(Msg::Connection(Connection::Connected))) => connected = true,
            Ok(Some(Msg::Server(ServerMessage::Snapshot { snapshot, .. }))) => break snapshot,
            Ok(Some(_)) => {}
            other => panic!("no snapshot over wss: {other:?}"),
        }
    };
    assert!(connected);
    assert!(!snapshot.apps.is_empty());
    // The server's own probe dials its TLS port, trusting exactly its own certificate.
    link.commands
        .send(CommandEnvelope {
            id: 7,
            command: AdminCommand::Inject {
                target: InjectTarget::Probe {
                    dialect: Dialect::Pubsub,
                    query: "key=pk_demo".into(),
                },
                frame: json!({"type": "subscribe", "channel": "demo/x"}).to_string(),
            },
        })
        .unwrap();
    let result = loop {
        match tokio::time::timeout_at(deadline, link.incoming.recv()).await {
            Ok(Some(Msg::Server(ServerMessage::Result(result)))) if result.id == 7 => break result,
            Ok(Some(_)) => {}
            other => panic!("no result for the probe: {other:?}"),
        }
    };
    assert!(result.ok, "{result:?}");
    drop(link);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let server = tls_server(&pair).await;
    let url = format!("wss://{}", server.addr);
    let cli = Cli::try_parse_from([
        "relaydeck",
        "load",
        "rooms",
        "--url",
        &url,
        "--rooms",
        "1",
        "--players",
        "2",
        "--rate",
        "10",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ])
    .unwrap();
    let Some(Sub::Load(args)) = cli.command else {
        panic!("not a load command");
    };
    let output = relaydeck::load::run(args).await.unwrap();
    let relaydeck::load::Output::Run(report) = output else {
        panic!("expected one run");
    };
    assert!(report.sent > 0, "{}", report.table());
    assert_eq!(report.lost, 0, "{}", report.table());
    assert!(report.errors.is_empty(), "{}", report.table());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_runs_sessions_over_wss_and_https() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let server = tls_server(&pair).await;
    let url = format!("wss://{}", server.addr);
    let cert = pair.cert.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_relaydeck"))
            .args(["replay", "--quiet", "--url", &url, "--ca-file"])
            .arg(&cert)
            .args([
                "sessions/signal-fish/ALREADY_IN_ROOM.jsonl",
                "sessions/talo-http/401.jsonl",
            ])
            .env_remove("RELAYDECK_ADMIN_TOKEN")
            .env_remove("RELAYDECK_CA_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 of 2 sessions passed"), "{stdout}");
    server.stop().await;
}

/// `serve` as deployed: a TLS listener from the command line, a certificate renewed in place
/// and SIGHUP, an open connection that lives through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_its_certificate_on_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    relaydeck::tls::add_ca_file(&pair.cert).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pair.cert)
        .arg("--tls-key")
        .arg(&pair.key)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("RELAYDECK_ADMIN_TOKEN")
        .env("RELAYDECK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr: std::net::SocketAddr = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        first
            .strip_prefix("listening on ")
            .unwrap()
            .parse()
            .unwrap()
    })
    .await
    .unwrap();
    // Log lines, read as they come, so the reload can be awaited rather than guessed at.
    let (log_tx, mut log_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut open = authenticated_signal_fish(&format!("wss://{addr}/v2/ws")).await;
    assert_eq!(presented_certificate(addr).await, pair.der);

    let renewed = write_pair(dir.path(), "renewed");
    relaydeck::tls::add_ca_file(&renewed.cert).unwrap();
    std::fs::copy(&renewed.cert, &pair.cert).unwrap();
    std::fs::copy(&renewed.key, &pair.key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, log_rx.recv()).await {
            Ok(Some(line)) if line.contains("TLS certificate reloaded") => break,
            Ok(Some(_)) => {}
            other => panic!("no reload logged: {other:?}"),
        }
    }
    assert_eq!(presented_certificate(addr).await, renewed.der);
    still_answers(&mut open).await;
    open.close().await;
    let _ = child.kill();
    let _ = child.wait();
}

/// The cluster's link to Redis over `rediss://`, trusting a self-signed Redis through
/// `--ca-file`: the node starts only if it reached Redis (it reads and writes its heartbeat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_reaches_redis_over_rediss() {
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "redis");
    relaydeck::tls::add_ca_file(&pair.cert).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--tls-cert-file")
        .arg(&pair.cert)
        .arg("--tls-key-file")
        .arg(&pair.key)
        .arg("--tls-ca-cert-file")
        .arg(&pair.cert)
        .args(["--tls-auth-clients", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is needed (bash scripts/test.sh installs it)");
    let stdout = redis.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"))
    });
    let ready = tokio::time::timeout(Duration::from_secs(10), ready).await;
    assert!(
        matches!(ready, Ok(Ok(true))),
        "redis-server with TLS did not start"
    );
    let mut config = Config::demo();
    config.cluster.redis = Some(format!("rediss://127.0.0.1:{port}"));
    config.cluster.node_id = Some("tls-node".into());
    let server = TestServer::start(config).await;
    let health = reqwest::Client::new()
        .get(format!("http://{}/health", server.addr))
        .timeout(RECEIVE_TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
    let _ = redis.kill();
    let _ = redis.wait();
}

/// A client that opens a socket on the TLS port and stalls, before or inside the handshake,
/// is closed after `security.header_read_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let pair = write_pair(dir.path(), "server");
    let mut config = Config::demo();
    config.tls.cert = Some(pair.cert.clone());
    config.tls.key = Some(pair.key.clone());
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    for first_bytes in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        socket.write_all(first_bytes).await.unwrap();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(RECEIVE_TIMEOUT, socket.read(&mut buffer))
            .await
            .expect("the server closed the stalled socket");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    server.stop().await;
}
