//! Connections as a crowd: churn leaves nothing behind. This file holds one test, so that no
//! other test's server shares the process whose memory it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;

/// The system allocator with counters: the live heap is what was allocated and not yet freed,
/// exact to the byte, where RSS moves by whole arenas and pages as the allocator sees fit.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn live_heap_kib() -> u64 {
    let stats = HEAP.stats();
    (stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated)
        / 1024) as u64
}

/// 10,000 connect/disconnect cycles leave no peer, channel or subscription behind, and the
/// process's memory flat. The server runs in this process, so its heap and RSS are the test's.
/// The live heap may grow by at most 256 KiB over the churn (26 bytes a connection, less than
/// any record a connection could leave behind; between runs it moves by about 100 KiB); RSS,
/// which also holds the allocator's arenas and free pages, by at most 20% of what it was after
/// a warm-up.
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
    // The warm-up lets the allocator and the runtime reach their working size first (tokio's
    // slabs, the server's pools), so what follows measures only what churn adds.
    cycles(server.clone(), 2_000).await;
    let before = (live_heap_kib(), rss_kib());
    let churn = async {
        cycles(server.clone(), 5_000).await;
        let middle = (live_heap_kib(), rss_kib());
        cycles(server.clone(), 5_000).await;
        (middle, (live_heap_kib(), rss_kib()))
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
    let figures = format!(
        "live heap and RSS in KiB: {before:?} after the warm-up, {middle:?} after 5,000 more \
         cycles, {after:?} after 10,000"
    );
    eprintln!("{figures}");
    assert!(after.0 <= before.0 + 256, "the live heap grew: {figures}");
    assert!(after.1 <= before.1 + before.1 / 5, "RSS grew: {figures}");
}
