//! A `redis-server` of a test's own, and relaydeck nodes joined to it (the cluster tests).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use relaydeck::server::config::Config;

use super::TestServer;

/// A `redis-server` of this test's own, on a free loopback port, stopped on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// On a free port. Another process may take the port between finding it and the server
    /// binding it, so a start that fails is tried again on another, a few times.
    pub fn start() -> Redis {
        for _ in 0..5 {
            if let Some(redis) = Redis::try_start_on(free_port()) {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports")
    }

    /// Start on `port` (a restart on the port a test's nodes know).
    pub fn start_on(port: u16) -> Redis {
        Redis::try_start_on(port).expect("redis-server did not become ready")
    }

    /// Start on `port` and wait for the server to say it is ready (no sleeping); `None` when
    /// it exits or stays silent instead.
    fn try_start_on(port: u16) -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is needed for the cluster tests (.ci/run installs it): {e}")
            });
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(Redis {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn node_config(redis: &Redis, node: &str) -> Config {
    let mut config = Config::demo();
    config.cluster.redis = Some(redis.url());
    config.cluster.node_id = Some(node.to_owned());
    config.cluster.heartbeat_ms = 100;
    config.cluster.node_timeout_ms = 600;
    config
}

pub async fn node(redis: &Redis, name: &str) -> TestServer {
    TestServer::start(node_config(redis, name)).await
}

/// A node as its own `relaydeck serve` process, so that a test can kill it outright (no
/// goodbye, no closes): returns the process, its address and its data folder.
pub fn node_process(redis: &Redis, name: &str) -> (Child, std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.json");
    std::fs::write(
        &config_path,
        serde_json::to_string(&node_config(redis, name)).unwrap(),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve"])
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first line names the address; it is printed once the listener is bound.
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .parse()
        .unwrap();
    (child, addr, dir)
}
