//! Signal Fish rooms on `/v2/ws`: rooms × players, each player sending `GameData` at a rate.
//!
//! # Setup
//! Every player sends `Authenticate{app_id}` and waits for `Authenticated`. The first player of
//! a room sends `JoinRoom` without a code, which creates the room, and reads its code from
//! `RoomJoined`; the others join with that code. Only then does sending start.
//!
//! # What is expected
//! A Signal Fish server relays `GameData` to every other member of the room (relaydeck:
//! `Rooms::game_data` sends to the room's audience except the sender; the real server's
//! `broadcast_game_data_with` likewise), so each measured message should arrive
//! `players − 1` times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures_util::SinkExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::peer::{self, Run, Sending, Template};
use super::stats::{self, CpuWindow};
use super::{
    await_frame, connect, limited, Buffers, CommonArgs, Ending, Output, ProcessUse, Report, Socket,
    Target, MAX_CONNECTIONS, MAX_PAYLOAD, MAX_RATE,
};

pub const PATH: &str = "/v2/ws";
/// Signal Fish rooms hold 1 to 100 players.
pub const MAX_PLAYERS: usize = 100;
/// Steps of a rate search after the first failing rate.
const BISECTIONS: usize = 3;
/// Between search steps, so the server has closed the previous step's rooms.
const STEP_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Args)]
pub struct RoomsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rooms, each created by its first player.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Players per room (2 to 100).
    #[arg(long, default_value_t = 16)]
    pub players: usize,
    /// GameData messages per second per player.
    #[arg(long, default_value_t = 30.0)]
    pub rate: f64,
    /// Bytes of each GameData `data` object, serialized (at least about 60: the stamp).
    #[arg(long, default_value_t = 1024)]
    pub payload: usize,
    /// The Signal Fish app id to authenticate with.
    #[arg(long, default_value = "demo")]
    pub app_id: String,
    /// The game every room is created for.
    #[arg(long, default_value = "relaydeck-load")]
    pub game_name: String,
    /// Instead of one run: find the highest rate (from --rate up, doubling, then bisecting)
    /// whose p99 is at most this many milliseconds with no loss and no closed connection.
    /// Each step lasts --warmup + --duration.
    #[arg(long, value_name = "P99_MS")]
    pub find_max_rate: Option<f64>,
    /// The highest rate a search tries.
    #[arg(long, default_value_t = 20_000.0)]
    pub max_rate: f64,
    /// Other nodes of the same cluster (`ws://host:port`, repeated): players are seated in
    /// turn on --url and these, each room's creator on --url, so that every room relays
    /// between nodes.
    #[arg(long = "spread-over", value_name = "URL")]
    pub spread_over: Vec<String>,
}

impl RoomsArgs {
    fn check(&self) -> anyhow::Result<()> {
        if !(2..=MAX_PLAYERS).contains(&self.players) {
            anyhow::bail!("--players must be between 2 and {MAX_PLAYERS}");
        }
        let connections = self.rooms.saturating_mul(self.players);
        if self.rooms == 0 || connections > MAX_CONNECTIONS {
            anyhow::bail!(
                "--rooms × --players must be between 1 and {MAX_CONNECTIONS} connections"
            );
        }
        for (name, rate) in [("--rate", self.rate), ("--max-rate", self.max_rate)] {
            if !(rate.is_finite() && (0.1..=MAX_RATE).contains(&rate)) {
                anyhow::bail!("{name} must be between 0.1 and {MAX_RATE} messages per second");
            }
        }
        if self.payload > MAX_PAYLOAD {
            anyhow::bail!("--payload must be at most {MAX_PAYLOAD} bytes");
        }
        if let Some(p99) = self.find_max_rate {
            if !(p99.is_finite() && p99 > 0.0) {
                anyhow::bail!("--find-max-rate takes a positive p99 in milliseconds");
            }
        }
        Ok(())
    }
}

pub async fn main(args: RoomsArgs) -> anyhow::Result<Output> {
    args.check()?;
    let target = Target::resolve(&args.common.url, args.common.allow_remote).await?;
    match args.find_max_rate {
        Some(p99) => search(&args, &target, p99).await.map(Output::Search),
        None => run(&args, &target, args.rate)
            .await
            .map(|r| Output::Run(Box::new(r))),
    }
}

/// One run at `rate` messages per second per player.
pub async fn run(args: &RoomsArgs, target: &Target, rate: f64) -> anyhow::Result<Report> {
    args.check()?;
    let url = target.url(PATH);
    let mut nodes = vec![target.clone()];
    for other in &args.spread_over {
        nodes.push(Target::resolve(other, args.common.allow_remote).await?);
    }
    let rooms = set_up(args, &nodes).await?;
    let run = Run::new(args.common.window())?;
    let template = Arc::new(Template::new(
        r#"{"type":"GameData","data":{"data":"#,
        "}}",
        args.payload,
    ));
    let admin = super::attach_admin(&args.common, target, run.stopped()).await?;
    let total = args.rooms * args.players;
    let audience = (args.players - 1) as u64;
    let mut tasks = Vec::with_capacity(total);
    for (room, players) in rooms.into_iter().enumerate() {
        for (seat, socket) in players.into_iter().enumerate() {
            let who = room * args.players + seat;
            let sending = Sending {
                sender: u32::try_from(who).unwrap_or(u32::MAX),
                rate,
                audience,
                phase: who as f64 / total as f64,
                template: template.clone(),
            };
            tasks.push(tokio::spawn(peer::drive(
                socket,
                who,
                Some(sending),
                run.clone(),
            )));
        }
    }
    let measured = measure_window(&run, args.common.server_pid).await;
    run.conclude(args.common.window().drain).await;
    let mut report = Report {
        workload: "rooms".to_owned(),
        label: args.common.label.clone(),
        url,
        parameters: json!({
            "rooms": args.rooms,
            "players": args.players,
            "rate": rate,
            "payload": args.payload,
            "app_id": args.app_id,
            "nodes": nodes.len(),
        }),
        connections: total,
        send_interval_ms: 1000.0 / rate,
        offered_per_s: rate * total as f64,
        generator: measured.generator,
        server: measured.server,
        machine: measured.machine,
        ..Report::default()
    };
    collect(&mut report, &args.common, &run, tasks, admin).await;
    Ok(report)
}

/// Sample CPU over the measured window (warm-up excluded) and memory at its end.
pub async fn measure_window(run: &Run, server_pid: Option<u32>) -> Measured {
    tokio::time::sleep_until(run.warm_end).await;
    let machine = CpuWindow::machine();
    let generator_cpu = CpuWindow::start(None);
    let server_cpu = server_pid.map(|pid| CpuWindow::start(Some(pid)));
    tokio::time::sleep_until(run.send_end).await;
    let generator = ProcessUse {
        pid: Some(std::process::id()),
        cpu: generator_cpu.finish(),
        rss_kib: stats::rss_kib(None),
    };
    let server = server_pid.map(|pid| ProcessUse {
        pid: Some(pid),
        cpu: server_cpu.as_ref().and_then(CpuWindow::finish),
        rss_kib: stats::rss_kib(Some(pid)),
    });
    Measured {
        generator,
        server,
        machine: machine.finish(),
    }
}

/// CPU and memory over a run's measured window.
pub struct Measured {
    pub generator: ProcessUse,
    pub server: Option<ProcessUse>,
    pub machine: Option<stats::CpuUse>,
}

/// Wait for every connection and the admin console, and fill in the report.
pub async fn collect(
    report: &mut Report,
    common: &CommonArgs,
    run: &Run,
    tasks: Vec<tokio::task::JoinHandle<Ending>>,
    admin: Option<tokio::task::JoinHandle<super::AdminReport>>,
) {
    for task in tasks {
        let ending = task
            .await
            .unwrap_or_else(|e| Ending::Error(format!("connection task failed: {e}")));
        ending.tally(&mut report.closed_by_server, &mut report.errors);
    }
    if let Some(admin) = admin {
        report.admin = admin.await.ok();
    }
    report.warmup_s = common.warmup;
    report.duration_s = common.duration;
    report.sent = stats::Counters::get(&run.counters.sent);
    report.expected_deliveries = stats::Counters::get(&run.counters.expected);
    report.deliveries = stats::Counters::get(&run.counters.received);
    report.latency = run.latency.summary();
    report.send_lag = run.lag.summary();
    report.finish();
}

/// Connect, authenticate and seat every player; rooms are set up side by side.
async fn set_up(args: &RoomsArgs, nodes: &[Target]) -> anyhow::Result<Vec<Vec<Socket>>> {
    let limit = super::connect_limit();
    let url = nodes.first().map(|n| n.url(PATH)).unwrap_or_default();
    let mut rooms = Vec::with_capacity(args.rooms);
    for room in 0..args.rooms {
        let (args, nodes, limit) = (args.clone(), nodes.to_vec(), limit.clone());
        rooms.push(tokio::spawn(async move {
            set_up_room(&args, &nodes, &limit, room).await
        }));
    }
    let mut seated = Vec::with_capacity(args.rooms);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for room in rooms {
        match room.await {
            Ok(Ok(players)) => seated.push(players),
            Ok(Err(error)) => *failures.entry(format!("{error:#}")).or_default() += 1,
            Err(error) => *failures.entry(error.to_string()).or_default() += 1,
        }
    }
    if !failures.is_empty() {
        let detail: Vec<String> = failures
            .iter()
            .map(|(error, n)| format!("{n} room(s): {error}"))
            .collect();
        anyhow::bail!(
            "{} of {} rooms could not be set up on {url}: {}",
            args.rooms - seated.len(),
            args.rooms,
            detail.join("; ")
        );
    }
    Ok(seated)
}

/// Seat one room: its creator on the first node, the others on the nodes in turn.
async fn set_up_room(
    args: &RoomsArgs,
    nodes: &[Target],
    limit: &tokio::sync::Semaphore,
    room: usize,
) -> anyhow::Result<Vec<Socket>> {
    let urls: Vec<String> = nodes.iter().map(|n| n.url(PATH)).collect();
    let (Some(home), Some(home_url)) = (nodes.first(), urls.first()) else {
        anyhow::bail!("no node to seat players on");
    };
    let create = json!({"type": "JoinRoom", "data": {
        "game_name": args.game_name,
        "player_name": format!("r{room}p0"),
        "max_players": args.players,
    }});
    let (creator, code) = limited(limit, join(home, home_url, &args.app_id, create)).await?;
    let mut joining = Vec::with_capacity(args.players - 1);
    for seat in 1..args.players {
        let frame = json!({"type": "JoinRoom", "data": {
            "game_name": args.game_name,
            "room_code": code,
            "player_name": format!("r{room}p{seat}"),
        }});
        let node = seat % nodes.len();
        joining.push(limited(
            limit,
            join(&nodes[node], &urls[node], &args.app_id, frame),
        ));
    }
    let mut players = vec![creator];
    for joined in futures_util::future::join_all(joining).await {
        players.push(joined?.0);
    }
    Ok(players)
}

/// Connect, authenticate, send `join`; the socket and the room code from `RoomJoined`.
async fn join(
    target: &Target,
    url: &str,
    app_id: &str,
    join: Value,
) -> anyhow::Result<(Socket, String)> {
    let mut socket = authenticate(target, url, app_id, Buffers::Busy).await?;
    socket.send(Message::text(join.to_string())).await?;
    let code = await_frame(&mut socket, |text| {
        let frame: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match frame["type"].as_str() {
            Some("RoomJoined") => Ok(frame["data"]["room_code"].as_str().map(str::to_owned)),
            Some("RoomJoinFailed" | "Error") => Err(refusal(&frame)),
            _ => Ok(None),
        }
    })
    .await?;
    Ok((socket, code))
}

/// A connection that has sent `Authenticate` and received `Authenticated`.
pub async fn authenticate(
    target: &Target,
    url: &str,
    app_id: &str,
    buffers: Buffers,
) -> anyhow::Result<Socket> {
    let mut socket = connect(target, url, None, buffers).await?;
    let hello = json!({"type": "Authenticate", "data": {"app_id": app_id}});
    socket.send(Message::text(hello.to_string())).await?;
    await_frame(&mut socket, |text| {
        let frame: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match frame["type"].as_str() {
            Some("Authenticated") => Ok(Some(())),
            Some("AuthenticationError" | "Error") => Err(refusal(&frame)),
            _ => Ok(None),
        }
    })
    .await?;
    Ok(socket)
}

/// `TYPE ERROR_CODE` of a refusal frame.
fn refusal(frame: &Value) -> String {
    format!(
        "{} {}",
        frame["type"].as_str().unwrap_or("?"),
        frame["data"]["error_code"].as_str().unwrap_or("")
    )
}

/// The steps of a rate search and the best run.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub p99_target_ms: f64,
    pub steps: Vec<Step>,
    /// The highest passing rate's run, if any rate passed.
    pub best: Option<Box<Report>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    pub pass: bool,
    pub deliveries_per_s: f64,
    pub p99_ms: f64,
    pub loss_ratio: f64,
    pub closed: u64,
    pub verdict: String,
}

impl SearchReport {
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "rate search: p99 ≤ {} ms, no loss, no closed connection",
            self.p99_target_ms
        )];
        lines.push(format!(
            "{:>10}  {:>4}  {:>14}  {:>9}  {:>7}  {:>6}  verdict",
            "rate/s", "pass", "deliveries/s", "p99 ms", "loss %", "closed"
        ));
        for step in &self.steps {
            lines.push(format!(
                "{:>10.1}  {:>4}  {:>14.0}  {:>9.2}  {:>7.3}  {:>6}  {}",
                step.rate,
                if step.pass { "yes" } else { "no" },
                step.deliveries_per_s,
                step.p99_ms,
                step.loss_ratio * 100.0,
                step.closed,
                step.verdict
            ));
        }
        match &self.best {
            Some(best) => {
                lines.push(String::new());
                lines.push("best:".to_owned());
                lines.push(best.table());
            }
            None => lines.push("no rate passed".to_owned()),
        }
        lines.join("\n")
    }
}

/// Double the rate from `--rate` while it passes, then bisect between the last pass and the
/// first failure.
async fn search(
    args: &RoomsArgs,
    target: &Target,
    p99_target_ms: f64,
) -> anyhow::Result<SearchReport> {
    let mut report = SearchReport {
        p99_target_ms,
        steps: Vec::new(),
        best: None,
    };
    let mut passed: f64 = 0.0;
    let mut failed: Option<f64> = None;
    let mut rate = args.rate;
    loop {
        if step(args, target, rate, &mut report).await {
            passed = rate;
            rate *= 2.0;
            if rate > args.max_rate {
                if passed < args.max_rate {
                    rate = args.max_rate;
                } else {
                    break;
                }
            }
        } else {
            failed = Some(rate);
            break;
        }
    }
    if let Some(mut high) = failed {
        for _ in 0..BISECTIONS {
            let middle = ((passed + high) / 2.0).round();
            if middle <= passed || middle >= high {
                break;
            }
            if step(args, target, middle, &mut report).await {
                passed = middle;
            } else {
                high = middle;
            }
        }
    }
    Ok(report)
}

/// One search step; whether it passed. A step that could not even be set up fails.
async fn step(args: &RoomsArgs, target: &Target, rate: f64, search: &mut SearchReport) -> bool {
    let outcome = run(args, target, rate).await;
    tokio::time::sleep(STEP_PAUSE).await;
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            search.steps.push(Step {
                rate,
                pass: false,
                deliveries_per_s: 0.0,
                p99_ms: 0.0,
                loss_ratio: 1.0,
                closed: 0,
                verdict: format!("{error:#}"),
            });
            return false;
        }
    };
    let closed: u64 =
        report.closed_by_server.values().sum::<u64>() + report.errors.values().sum::<u64>();
    let pass = report.latency.p99_ms <= search.p99_target_ms
        && report.lost == 0
        && closed == 0
        && report.sent_per_s >= 0.97 * report.offered_per_s;
    search.steps.push(Step {
        rate,
        pass,
        deliveries_per_s: report.deliveries_per_s,
        p99_ms: report.latency.p99_ms,
        loss_ratio: report.loss_ratio,
        closed,
        verdict: report.verdict.clone(),
    });
    let better = search
        .best
        .as_ref()
        .is_none_or(|best| best.offered_per_s < report.offered_per_s);
    if pass && better {
        search.best = Some(Box::new(report));
    }
    pass
}
