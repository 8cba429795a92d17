//! Long upgrade paths and the history of closed peers. One test in this file, so that no other
//! test's server shares the process whose memory it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;

/// Issue 19's reproduction: 1,500 upgrades with 50 KB paths, each kept in the history of
/// closed peers, move the process's memory by at most 32 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_upgrade_paths_in_the_history_stay_bounded() {
    let mut config = Config::demo();
    config.apps[0].limits.max_connections = 100_000;
    let server = std::sync::Arc::new(TestServer::start(config).await);
    let pad = "p".repeat(50 * 1024);
    async fn cycles(server: std::sync::Arc<TestServer>, pad: String, count: usize) {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let server = server.clone();
                let path = format!("/v1?key=pk_demo&channels=demo/long&pad={pad}");
                tokio::spawn(async move {
                    for _ in 0..count / 8 {
                        let mut socket = server.connect(&path).await;
                        recv_type(&mut socket, "welcome").await;
                        close_and_drain(&mut socket).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
    }
    cycles(server.clone(), pad.clone(), 200).await;
    let before = rss_kib();
    tokio::time::timeout(Duration::from_secs(120), cycles(server.clone(), pad, 1_500))
        .await
        .expect("1,500 cycles within two minutes");
    let after = rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("RSS grew by {grown_mib} MiB over 1,500 upgrades with 50 KB paths");
    assert!(
        grown_mib <= 32,
        "RSS {before} KiB before, {after} KiB after 1,500 upgrades with 50 KB paths"
    );
}
