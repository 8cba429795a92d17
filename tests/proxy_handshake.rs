//! The proxy's two handshakes: the client's `Sec-WebSocket-Protocol` offered to the upstream
//! and the upstream's choice (or refusal to choose) given back, with a small upstream here
//! that chooses as told; and a `wss://` upstream, relaydeck's own server over TLS with a
//! certificate the proxy trusts through `--ca-file`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::proxy::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use relaydeck::server::config::Config;
use relaydeck::wsclient::{Received, Request};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request as Upgrade, Response};
use tokio_tungstenite::tungstenite::Message;

/// An echo server on a loopback port that chooses the last subprotocol offered when
/// `chooses`, and none otherwise; what each upgrade offered is kept in `offers`.
struct EchoUpstream {
    url: String,
    offers: Arc<Mutex<Vec<Option<String>>>>,
}

impl EchoUpstream {
    async fn start(chooses: bool) -> EchoUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let offers = Arc::new(Mutex::new(Vec::new()));
        let seen = offers.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    // The library's callback type fixes the error's size.
                    #[allow(clippy::result_large_err)]
                    let choose = |request: &Upgrade, mut response: Response| {
                        let offered = request
                            .headers()
                            .get("sec-websocket-protocol")
                            .map(|v| v.to_str().unwrap().to_owned());
                        if let Some(last) = offered
                            .as_deref()
                            .and_then(|o| o.split(',').next_back())
                            .filter(|_| chooses)
                        {
                            response
                                .headers_mut()
                                .insert("sec-websocket-protocol", last.trim().parse().unwrap());
                        }
                        seen.lock().unwrap().push(offered);
                        Ok(response)
                    };
                    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(tcp, choose).await
                    else {
                        return;
                    };
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_text() && socket.send(message).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EchoUpstream { url, offers }
    }

    fn offers(&self) -> Vec<Option<String>> {
        self.offers.lock().unwrap().clone()
    }
}

/// Connect to `url` offering `offered`; the subprotocol the answer chose, or the error.
async fn offer(url: &str, offered: &str) -> Result<(Socket, Option<String>), String> {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offered.parse().unwrap());
    let connected =
        tokio::time::timeout(RECEIVE_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("no handshake before the timeout");
    connected
        .map(|(socket, response)| {
            let chosen = response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            (socket, chosen)
        })
        .map_err(|e| e.to_string())
}

async fn echoes(socket: &mut Socket) {
    send_text(socket, "hello").await;
    let echoed = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
        .await
        .expect("no echo before the timeout");
    assert!(
        matches!(&echoed, Some(Ok(Message::Text(t))) if t.as_str() == "hello"),
        "{echoed:?}"
    );
}

#[tokio::test]
async fn the_upstreams_choice_among_the_clients_subprotocols_reaches_the_client() {
    let upstream = EchoUpstream::start(true).await;
    let proxy = proxy_to(&upstream.url).await;
    let (mut socket, chosen) = offer(&proxy.url("/game"), "alpha, beta").await.unwrap();
    assert_eq!(
        chosen.as_deref(),
        Some("beta"),
        "the upstream's choice, not the first"
    );
    echoes(&mut socket).await;
    assert_eq!(upstream.offers(), vec![Some("alpha, beta".to_owned())]);

    // No offer, no choice: the upstream hears of none.
    let mut plain = proxy.connect("/game").await;
    echoes(&mut plain).await;
    assert_eq!(upstream.offers()[1], None);
    close_and_drain(&mut socket).await;
    close_and_drain(&mut plain).await;
}

#[tokio::test]
async fn an_upstream_that_chooses_none_is_answered_with_none_as_the_upstream_answers() {
    let upstream = EchoUpstream::start(false).await;
    let proxy = proxy_to(&upstream.url).await;
    // A client that insists on a subprotocol gives up through the proxy exactly as it does
    // against the upstream itself, rather than on a refused upgrade.
    let Err(direct) = offer(&upstream.url, "alpha").await else {
        panic!("accepted directly")
    };
    let Err(proxied) = offer(&proxy.url("/game"), "alpha").await else {
        panic!("accepted through the proxy")
    };
    assert_eq!(proxied, direct);
    assert!(proxied.contains("no subprotocol"), "{proxied}");

    // A client that takes what it gets carries on without one.
    let mut client = Request::new(proxy.url("/game"))
        .subprotocols("alpha")
        .timeout(RECEIVE_TIMEOUT)
        .connect()
        .await
        .unwrap();
    assert_eq!(client.subprotocol, None);
    client.send_text("hello").await.unwrap();
    let deadline = tokio::time::Instant::now() + RECEIVE_TIMEOUT;
    assert_eq!(
        client.receive_until(deadline).await,
        Some(Received::Text("hello".into()))
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_upstream_is_trusted_through_the_ca_file_and_relayed_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.path().join("upstream.crt");
    let key = dir.path().join("upstream.key");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    // What `--ca-file` does for every client of the process, the proxy's included.
    relaydeck::tls::add_ca_file(&cert).unwrap();
    let mut config = Config::demo();
    config.tls.cert = Some(cert);
    config.tls.key = Some(key);
    let upstream = TestServer::start(config).await;
    let proxy = proxy_to(&format!("wss://{}", upstream.addr)).await;

    let mut admin = proxy.admin().await;
    let mut alice = raw_player(&proxy).await;
    let code = create_room(&mut alice, "Alice").await;
    let player = proxied_player_in(&mut admin, &code).await;
    assert_eq!(player.identity.as_deref(), Some("Alice"));
    send_json(&mut alice, json!({"type": "Ping"})).await;
    recv_type(&mut alice, "Pong").await;

    let health = tokio::time::timeout(RECEIVE_TIMEOUT, reqwest::get(proxy.http("/health")))
        .await
        .expect("no answer before the timeout")
        .unwrap();
    assert_eq!(
        health.status().as_u16(),
        200,
        "plain HTTP goes out as https"
    );
    close_and_drain(&mut alice).await;
}
