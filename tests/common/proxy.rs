//! `relaydeck proxy` as the proxy suites (tests/proxy*.rs) drive it: a proxy on a loopback
//! port in front of an upstream, the real `signal-fish-server` 0.12 as that upstream, and a
//! raw Signal Fish player through it.

use std::path::PathBuf;
use std::process::Stdio;

use relaydeck::protocol::admin::{Event, PeerInfo};
use relaydeck::server::config::Config;
use relaydeck::server::ServerOptions;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::*;

pub const GAME: &str = "proxy-game";

/// A proxy on 127.0.0.1:0 in front of `upstream`, as a test server (its admin token, its
/// admin connection, its data folder).
pub async fn proxy_to(upstream: &str) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        data_dir: data.path().to_path_buf(),
        admin_token: None,
        admin_buffer: None,
        readonly: false,
    };
    let config = Config::parse(r#"{"apps": []}"#, "proxy").unwrap();
    let server = relaydeck::proxy::spawn(
        "127.0.0.1:0".parse().unwrap(),
        relaydeck::proxy::Upstream::parse(upstream).unwrap(),
        config,
        options,
    )
    .await
    .unwrap();
    TestServer {
        addr: server.addr,
        token: server.admin_token.clone(),
        server: Some(server),
        data,
    }
}

/// The real signal-fish-server, running on a loopback port until dropped.
pub struct RealSignalFish {
    pub port: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// The real signal-fish-server 0.12.0, as scripts/test.sh installs it and names it in
/// `SIGNAL_FISH_BIN`. A test that needs it fails without it, saying how to get it, as the
/// tests needing tmux or redis-server do: a judge that is missing must not pass.
pub fn signal_fish_bin() -> PathBuf {
    let bin = std::env::var_os("SIGNAL_FISH_BIN")
        .map(PathBuf::from)
        .expect(
            "SIGNAL_FISH_BIN is not set: run the tests with scripts/test.sh, which installs \
         signal-fish-server 0.12.0 and names it",
        );
    assert!(
        bin.is_file(),
        "SIGNAL_FISH_BIN={} is not a file",
        bin.display()
    );
    bin
}

impl RealSignalFish {
    pub async fn start() -> RealSignalFish {
        let bin = signal_fish_bin();
        // A port another process takes between this probe and the server's bind makes the
        // server exit; a few attempts make that a non-event.
        for _ in 0..5 {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("signal-fish.json");
            std::fs::write(
                &config,
                json!({
                    "port": port,
                    "logging": {"enable_file_logging": false, "level": "info"},
                    "security": {
                        "enforce_app_id_allowlist": true,
                        "require_metrics_auth": false,
                        "allowed_apps": [{"app_id": "demo", "app_name": "Demo"}]
                    }
                })
                .to_string(),
            )
            .unwrap();
            let mut child = tokio::process::Command::new(&bin)
                .current_dir(dir.path())
                .env("SIGNAL_FISH_CONFIG_PATH", &config)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start signal-fish-server");
            // It logs one JSON line per event on stdout; "Server started" follows the bind.
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let started = tokio::time::timeout(EVENT_TIMEOUT, async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("Server started") {
                        return true;
                    }
                }
                false
            })
            .await
            .expect("signal-fish-server neither started nor exited in time");
            if started {
                // Its later log lines must not fill the pipe and stall it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return RealSignalFish {
                    port,
                    _child: child,
                    _dir: dir,
                };
            }
        }
        panic!("signal-fish-server did not start on any of five ports");
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

/// A raw Signal Fish client through the proxy, authenticated as `demo`.
pub async fn raw_player(proxy: &TestServer) -> Socket {
    let mut socket = proxy.connect("/v2/ws").await;
    send_json(
        &mut socket,
        json!({"type": "Authenticate", "data": {"app_id": "demo"}}),
    )
    .await;
    recv_type(&mut socket, "Authenticated").await;
    // Both servers follow with ProtocolInfo; a test that sends before it arrives would see
    // it land between its request and the answer.
    recv_type(&mut socket, "ProtocolInfo").await;
    socket
}

pub async fn create_room(socket: &mut Socket, name: &str) -> String {
    send_json(
        socket,
        json!({"type": "JoinRoom", "data": {"game_name": GAME, "player_name": name, "max_players": 2}}),
    )
    .await;
    let joined = recv_type(socket, "RoomJoined").await;
    joined["data"]["room_code"].as_str().unwrap().to_owned()
}

/// Wait until the proxy's admin shows a peer in room `code`; that peer.
pub async fn proxied_player_in(admin: &mut Admin, code: &str) -> PeerInfo {
    if let Some(peer) = admin
        .snapshot
        .peers
        .iter()
        .find(|p| p.room.as_deref() == Some(code))
    {
        return peer.clone();
    }
    let Event::PeerUpdated { peer } = admin
        .wait_event(
            |e| matches!(e, Event::PeerUpdated { peer } if peer.room.as_deref() == Some(code)),
        )
        .await
    else {
        unreachable!()
    };
    peer
}
