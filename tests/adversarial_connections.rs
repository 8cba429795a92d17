//! Connections as a crowd: churn leaves nothing behind. This file holds one test, so that no
//! other test's server shares the process whose memory it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;

/// 10,000 connect/disconnect cycles leave no peer, channel or subscription behind, and the
/// process's memory flat: the second 5,000 cycles grow it by at most 5%, the whole churn by
/// at most 20% of what it was after a warm-up. The server runs in this process, so its RSS
/// is the test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_leave_nothing_behind() {
    use futures_util::StreamExt;
    let mut config = Config::demo();
    config.apps[0].limits.max_connections = 100_000;
    let server = std::sync::Arc::new(TestServer::start(config).await);
    async fn cycles(server: std::sync::Arc<TestServer>, count: usize) {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let server = server.clone();
                tokio::spawn(async move {
                    for _ in 0..count / 16 {
                        let mut socket =
                            server.connect("/v1?key=pk_demo&channels=demo/churn").await;
                        recv_type(&mut socket, "welcome").await;
                        socket.close(None).await.unwrap();
                        while let Ok(Some(Ok(_))) =
                            tokio::time::timeout(Duration::from_secs(10), socket.next()).await
                        {
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
    }
    // The warm-up lets the allocator and the runtime reach their working size first; what
    // they still grow by on a loaded machine (an arena for a new thread) shows in the first
    // half of the churn, while a leak grows both halves alike.
    cycles(server.clone(), 2_000).await;
    let before = rss_kib();
    let churn = async {
        cycles(server.clone(), 5_000).await;
        let middle = rss_kib();
        cycles(server.clone(), 5_000).await;
        (middle, rss_kib())
    };
    let (middle, after) = tokio::time::timeout(Duration::from_secs(120), churn)
        .await
        .expect("10,000 cycles within two minutes");
    let mut admin = server.admin().await;
    assert!(
        admin
            .command(relaydeck::protocol::admin::Command::Resync)
            .await
            .ok
    );
    assert!(
        admin.snapshot.peers.is_empty(),
        "{:?}",
        admin.snapshot.peers
    );
    assert!(admin.snapshot.channels.is_empty());
    assert!(admin.snapshot.subscriptions.is_empty());
    assert!(
        after <= middle + middle / 20 && after <= before + before / 5,
        "RSS {before} KiB after the warm-up, {middle} KiB after 5,000 more cycles, {after} KiB after 10,000"
    );
}
