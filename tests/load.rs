//! `relaydeck load` against the bundled server on 127.0.0.1:0: tiny, bounded runs that must
//! lose nothing and produce their figures. No timing is asserted here: how fast the server is
//! belongs to the benchmark (docs/PERFORMANCE.md), not to tests that run on any machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clap::Parser;
use relaydeck::cli::{Cli, Command};
use relaydeck::load::{self, Output, Report};

use common::TestServer;

async fn load(args: &[&str]) -> anyhow::Result<Output> {
    let cli = Cli::try_parse_from(["relaydeck", "load"].iter().chain(args))?;
    let Some(Command::Load(args)) = cli.command else {
        panic!("not a load command: {args:?}");
    };
    load::run(args).await
}

fn report(output: Output) -> Box<Report> {
    match output {
        Output::Run(report) => report,
        Output::Search(_) => panic!("expected one run"),
    }
}

fn assert_nothing_lost(report: &Report) {
    assert!(report.sent > 0, "{}", report.table());
    assert!(report.expected_deliveries > 0, "{}", report.table());
    assert_eq!(report.lost, 0, "{}", report.table());
    assert_eq!(report.deliveries, report.expected_deliveries);
    assert!(report.closed_by_server.is_empty(), "{}", report.table());
    assert!(report.errors.is_empty(), "{}", report.table());
    assert_eq!(report.latency.samples, report.deliveries);
    assert!(report.latency.p50_ms > 0.0 && report.latency.p99_ms >= report.latency.p50_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_room_run_loses_nothing_and_reports_latency() {
    let server = TestServer::demo().await;
    let url = format!("ws://{}", server.addr);
    let admin_token = server.token.clone();
    let output = load(&[
        "rooms",
        "--url",
        &url,
        "--rooms",
        "1",
        "--players",
        "3",
        "--rate",
        "20",
        "--payload",
        "200",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--attach-admin",
        "--admin-token",
        &admin_token,
    ])
    .await
    .unwrap();
    let report = report(output);
    assert_nothing_lost(&report);
    // Every message reaches the two other players.
    assert_eq!(report.expected_deliveries, report.sent * 2);
    assert_eq!(report.connections, 3);
    assert!(report.generator.cpu.is_some() || !std::path::Path::new("/proc").exists());
    let admin = report
        .admin
        .as_ref()
        .expect("the admin console was attached");
    assert!(admin.frames > 0, "the console saw no delta");
    let json = Output::Run(report).json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["workload"], "rooms");
    assert!(value["latency"]["p99_ms"].is_number());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fan_out_reaches_every_subscriber_but_not_the_publisher() {
    let server = TestServer::demo().await;
    let url = format!("ws://{}", server.addr);
    let output = load(&[
        "pubsub",
        "--url",
        &url,
        "--publishers",
        "1",
        "--subscribers",
        "3",
        "--rate",
        "20",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--key",
        "pk_demo",
        "--channel",
        "demo/load",
    ])
    .await
    .unwrap();
    let report = report(output);
    assert_nothing_lost(&report);
    assert_eq!(report.expected_deliveries, report.sent * 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_counted_and_the_servers_memory_read() {
    let server = TestServer::demo().await;
    let url = format!("ws://{}", server.addr);
    // The server runs in this process, so this process's id is the server's.
    let pid = std::process::id().to_string();
    let output = load(&[
        "idle",
        "--url",
        &url,
        "--connections",
        "20",
        "--duration",
        "0.2",
        "--server-pid",
        &pid,
    ])
    .await
    .unwrap();
    let report = report(output);
    let idle = report.idle.as_ref().unwrap();
    assert_eq!(idle.connected, 20, "{}", report.table());
    assert!(idle.failed.is_empty());
    assert!(report.closed_by_server.is_empty(), "{}", report.table());
    if std::path::Path::new("/proc/self/status").exists() {
        assert!(idle.server_kib_per_connection.is_some());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_refused_handshake_is_an_error_that_names_the_code() {
    let server = TestServer::demo().await;
    let url = format!("ws://{}", server.addr);
    let error = load(&[
        "rooms",
        "--url",
        &url,
        "--players",
        "2",
        "--app-id",
        "no-such-app",
        "--duration",
        "1",
    ])
    .await
    .err()
    .expect("an unknown app cannot authenticate")
    .to_string();
    assert!(error.contains("AuthenticationError"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn targets_off_this_machine_and_unbounded_runs_are_refused() {
    let remote = load(&["rooms", "--url", "ws://192.0.2.1:7878", "--duration", "1"])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(remote.contains("--allow-remote"), "{remote}");
    for args in [
        &["rooms", "--duration", "601"][..],
        &["rooms", "--players", "101"],
        &["rooms", "--rooms", "1000", "--players", "100"],
        &["rooms", "--payload", "70000"],
        &["pubsub", "--subscribers", "0"],
        &["idle", "--connections", "20001"],
        &["rooms", "--attach-admin"],
    ] {
        // Refused before any connection is made: nothing listens on this port.
        let mut args = args.to_vec();
        args.extend(["--url", "ws://127.0.0.1:9"]);
        let error = load(&args).await.err().unwrap().to_string();
        assert!(
            error.contains("must") || error.contains("needs"),
            "{args:?}: {error}"
        );
    }
}

#[test]
fn the_binary_prints_a_json_report() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::demo());
    let url = format!("ws://{}", server.addr);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args([
            "load",
            "rooms",
            "--url",
            &url,
            "--players",
            "2",
            "--rate",
            "10",
            "--warmup",
            "0",
            "--duration",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["lost"], 0);
    assert!(value["deliveries"].as_u64().unwrap() > 0);
    runtime.block_on(server.stop());
}
