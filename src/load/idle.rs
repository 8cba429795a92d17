//! Idle connections: N Signal Fish connections that authenticate and then only read (so that
//! pings are answered), held for `--duration` seconds. With `--server-pid`, the server's
//! resident memory before any connection and at the end of the hold gives its cost per
//! idle authenticated connection.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::peer::ending_of;
use super::signal_fish::{authenticate, PATH};
use super::stats::{self, CpuWindow};
use super::{limited, Buffers, CommonArgs, Ending, ProcessUse, Report, Target, MAX_CONNECTIONS};

/// After the last connection is up, before memory is read: lets the server finish the work
/// an authentication leaves behind (and its allocator settle).
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Connections to open (at most 20,000; mind `ulimit -n` on both sides).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// The Signal Fish app id to authenticate with.
    #[arg(long, default_value = "demo")]
    pub app_id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleReport {
    pub requested: usize,
    pub connected: usize,
    /// Connections that could not be set up, by error.
    pub failed: BTreeMap<String, u64>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_kib_per_connection: Option<f64>,
    pub generator_rss_before_kib: Option<u64>,
    pub generator_rss_after_kib: Option<u64>,
    pub generator_kib_per_connection: Option<f64>,
    /// Seconds from the first connection attempt until the last was authenticated.
    pub setup_s: f64,
}

pub async fn run(args: &IdleArgs) -> anyhow::Result<Box<Report>> {
    if args.connections == 0 || args.connections > MAX_CONNECTIONS {
        anyhow::bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
    }
    let common = &args.common;
    let target = Target::resolve(&common.url, common.allow_remote).await?;
    let url = target.url(PATH);
    let pid = common.server_pid;
    let mut idle = IdleReport {
        requested: args.connections,
        server_rss_before_kib: pid.and_then(|pid| stats::rss_kib(Some(pid))),
        generator_rss_before_kib: stats::rss_kib(None),
        ..IdleReport::default()
    };
    let (stop, stopped) = watch::channel(false);
    let (ready, mut readiness) = mpsc::channel::<Result<(), String>>(1024);
    let limit = super::connect_limit();
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (target, url, app_id) = (target.clone(), url.clone(), args.app_id.clone());
        let (limit, ready, mut stopped) = (limit.clone(), ready.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            let setup = limited(&limit, authenticate(&target, &url, &app_id, Buffers::Idle)).await;
            let mut socket = match setup {
                Ok(socket) => {
                    let _ = ready.send(Ok(())).await;
                    socket
                }
                Err(error) => {
                    let _ = ready.send(Err(format!("{error:#}"))).await;
                    return None;
                }
            };
            drop(ready);
            let ending = loop {
                tokio::select! {
                    message = socket.next() => match message {
                        Some(Ok(Message::Close(frame))) => break Ending::from_close(frame.as_ref()),
                        Some(Ok(_)) => {}
                        Some(Err(error)) => break ending_of(error),
                        None => break Ending::dropped(),
                    },
                    _ = stopped.wait_for(|stop| *stop) => break Ending::Ours,
                }
            };
            if ending == Ending::Ours {
                super::close(&mut socket).await;
            }
            Some(ending)
        }));
    }
    drop(ready);
    while let Some(outcome) = readiness.recv().await {
        match outcome {
            Ok(()) => idle.connected += 1,
            Err(error) => *idle.failed.entry(error).or_default() += 1,
        }
    }
    idle.setup_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let machine = CpuWindow::machine();
    let generator_cpu = CpuWindow::start(None);
    let server_cpu = pid.map(|pid| CpuWindow::start(Some(pid)));
    let admin = super::attach_admin(common, &target, stopped.clone()).await?;
    tokio::time::sleep(Duration::from_secs_f64(common.duration)).await;
    idle.server_rss_after_kib = pid.and_then(|pid| stats::rss_kib(Some(pid)));
    idle.generator_rss_after_kib = stats::rss_kib(None);
    let per_connection = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(before), Some(after)) if idle.connected > 0 => {
            Some((after as f64 - before as f64) / idle.connected as f64)
        }
        _ => None,
    };
    idle.server_kib_per_connection =
        per_connection(idle.server_rss_before_kib, idle.server_rss_after_kib);
    idle.generator_kib_per_connection =
        per_connection(idle.generator_rss_before_kib, idle.generator_rss_after_kib);
    let mut report = Report {
        workload: "idle".to_owned(),
        label: common.label.clone(),
        url,
        parameters: json!({"connections": args.connections, "app_id": args.app_id}),
        connections: idle.connected,
        warmup_s: 0.0,
        duration_s: common.duration,
        generator: ProcessUse {
            pid: Some(std::process::id()),
            cpu: generator_cpu.finish(),
            rss_kib: idle.generator_rss_after_kib,
        },
        server: pid.map(|pid| ProcessUse {
            pid: Some(pid),
            cpu: server_cpu.as_ref().and_then(CpuWindow::finish),
            rss_kib: idle.server_rss_after_kib,
        }),
        machine: machine.finish(),
        ..Report::default()
    };
    stop.send_replace(true);
    for task in tasks {
        match task.await {
            Ok(Some(ending)) => ending.tally(&mut report.closed_by_server, &mut report.errors),
            Ok(None) => {}
            Err(error) => *report.errors.entry(error.to_string()).or_default() += 1,
        }
    }
    if let Some(admin) = admin {
        report.admin = admin.await.ok();
    }
    report.idle = Some(idle);
    report.finish();
    Ok(Box::new(report))
}
