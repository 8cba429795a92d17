//! Admission over real sockets: connection caps answer with complete HTTP refusals, a client
//! that never finishes its headers is dropped, and shutdown does not wait for slow clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn sockets_over_the_per_address_cap_are_refused_with_429() {
    let mut config = Config::demo();
    config.security.max_connections_per_ip = 2;
    let server = TestServer::start(config).await;
    let (mut first, _) = welcomed_pubsub(&server).await;
    let (_second, _) = welcomed_pubsub(&server).await;
    match tokio_tungstenite::connect_async(server.url("/v1?key=pk_demo")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "5");
        }
        other => panic!("expected HTTP 429, got {:?}", other.map(|_| "a connection")),
    }
    // A place frees when a socket closes: once the server has closed its end (the stream
    // ends), the next client is admitted.
    futures_util::SinkExt::close(&mut first).await.unwrap();
    while let Ok(Some(_)) = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut first),
    )
    .await
    {}
    assert!(
        tokio_tungstenite::connect_async(server.url("/v1?key=pk_demo"))
            .await
            .is_ok(),
        "the freed place is given to the next client"
    );
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_an_apps_connections() {
    // Four connections for the app; unset, one address's share is half of them.
    let mut config = Config::demo();
    config.apps[0].limits.max_connections = 4;
    let server = TestServer::start(config).await;
    let here: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let neighbour: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut socket = server.connect_from(here, "/v1?key=pk_demo").await;
        recv_type(&mut socket, "welcome").await;
        held.push(socket);
    }
    let mut third = server.connect_from(here, "/v1?key=pk_demo").await;
    assert_eq!(
        recv_close(&mut third).await,
        (4010, "over_concurrent_limit".to_owned())
    );
    // Another address still gets in: the app is not full, only this address's share is.
    let mut other = server.connect_from(neighbour, "/v1?key=pk_demo").await;
    recv_type(&mut other, "welcome").await;
    held.push(other);
    // Signal Fish counts the same share (any dialect of the app, from one address): the
    // neighbour's second connection of the app is its last.
    let authenticate = serde_json::json!({"type": "Authenticate", "data": {"app_id": "demo"}});
    let mut player = server.connect_from(neighbour, "/v2/ws").await;
    send_json(&mut player, authenticate.clone()).await;
    recv_type(&mut player, "Authenticated").await;
    held.push(player);
    let mut refused_player = server.connect_from(neighbour, "/v2/ws").await;
    send_json(&mut refused_player, authenticate).await;
    let refused = recv_type(&mut refused_player, "AuthenticationError").await;
    assert_eq!(
        refused["data"]["error_code"], "TOO_MANY_CONNECTIONS",
        "{refused}"
    );
    // A place given back is free again.
    close_and_drain(&mut held[0]).await;
    let mut again = server.connect_from(here, "/v1?key=pk_demo").await;
    recv_type(&mut again, "welcome").await;
}

#[tokio::test]
async fn sockets_over_the_global_cap_are_refused_with_503() {
    let mut config = Config::demo();
    config.security.max_connections = 1;
    let server = TestServer::start(config).await;
    let (_only, _) = welcomed_pubsub(&server).await;
    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let answer = read_to_end(&mut refused).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("security.max_connections"), "{answer}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let mut config = Config::demo();
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // No blank line ever follows: the server answers 408 or simply closes, within the timeout.
    let answer = read_to_end(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_slow_client() {
    let mut config = Config::demo();
    config.security.shutdown_timeout_ms = 500;
    config.security.header_read_timeout_ms = 60_000;
    let server = TestServer::start(config).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown waited on a client that never finished its request");
}

async fn welcomed_pubsub(server: &TestServer) -> (Socket, serde_json::Value) {
    let mut socket = server.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut socket, "welcome").await;
    (socket, welcome)
}

#[tokio::test]
async fn a_silent_pubsub_connection_is_closed_after_the_idle_timeout() {
    let mut config = Config::demo();
    config.security.idle_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let (mut silent, _) = welcomed_pubsub(&server).await;
    assert_eq!(
        recv_close(&mut silent).await,
        (1000, "idle_timeout".to_owned())
    );
}

/// Bound beyond loopback, `/metrics` shows every app's traffic to the network, so it needs the
/// admin or viewer token. (The server listens on every address; the test talks to it over
/// loopback only.)
#[tokio::test]
async fn metrics_beyond_loopback_need_a_token() {
    let data = tempfile::tempdir().unwrap();
    let server = relaydeck::server::spawn(
        "0.0.0.0:0".parse().unwrap(),
        Config::demo(),
        relaydeck::server::ServerOptions {
            data_dir: data.path().to_path_buf(),
            admin_token: Some("metrics-admin".into()),
            admin_buffer: None,
            readonly: false,
        },
    )
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/metrics", server.addr.port());
    let client = reqwest::Client::new();
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let viewer = relaydeck::server::access::viewer_token("metrics-admin");
    let watched = client.get(&url).bearer_auth(viewer).send().await.unwrap();
    assert_eq!(watched.status(), 200);
    assert!(watched.text().await.unwrap().contains("relaydeck_peers"));
    server.shutdown().await.unwrap();
}

/// `GET path` with `Host: host`, raw; the status line.
async fn status_for_host(server: &TestServer, path: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(RECEIVE_TIMEOUT, tokio::net::TcpStream::connect(server.addr))
            .await
            .unwrap()
            .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(RECEIVE_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name in `Host`; a
/// loopback-bound server answers only loopback names and those in `security.allowed_hosts`.
#[tokio::test]
async fn a_loopback_server_answers_loopback_and_listed_host_names_only() {
    let mut config = relaydeck::server::config::Config::demo();
    config.security.allowed_hosts = vec!["relay.internal".to_owned()];
    let server = TestServer::start(config).await;
    let port = server.addr.port();
    for path in ["/health", "/metrics"] {
        assert_eq!(
            status_for_host(&server, path, &format!("rebind.evil.test:{port}")).await,
            "HTTP/1.1 403 Forbidden",
            "{path}"
        );
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("relay.internal:{port}"),
        ] {
            assert_eq!(
                status_for_host(&server, path, &host).await,
                "HTTP/1.1 200 OK",
                "{path} {host}"
            );
        }
    }
}
