//! `relaydeck bench`: how the console copes with a big server, measured side by side at 1k,
//! 10k and 100k peers so the figures read as ratios (how the cost grows) as well as against
//! the budgets at 100k: a sorted table follows a delta and redraws within 5 ms, a snapshot
//! lands in the sorted peers view within 50 ms, and a new filter and sort are applied within
//! 16 ms (one frame).
//!
//! Measured per size, through the console's own update and draw: applying a snapshot and a
//! burst of deltas, a full redraw of every view into a 200×50 test terminal, filtering plus
//! sorting the peers table from scratch, and a sorted peers table under live deltas.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

use crate::catalog::{Delivery, Dialect};
use crate::console::app::{App, Connection, Msg, View};
use crate::console::keymap::Keymap;
use crate::console::model::Model;
use crate::console::ui;
use crate::protocol::admin::{
    AppInfo, AppStatus, Closed, ClosedPeer, Event, HistoryEntry, HistoryLimits, PeerInfo,
    RecentError, RoomInfo, RoomMember, ServerInfo, ServerMessage, Snapshot, Stats,
};

const DIALECTS: [Dialect; 4] = [
    Dialect::Pubsub,
    Dialect::SignalFish,
    Dialect::Talo,
    Dialect::Flow,
];

pub struct Size {
    pub peers: usize,
    pub rooms: usize,
}

/// Peer `i`, its counters moved on by `bump`.
fn peer(i: usize, bump: u64) -> PeerInfo {
    PeerInfo {
        id: format!("p{i}"),
        dialect: DIALECTS[i % DIALECTS.len()],
        app: Some("demo".into()),
        identity: Some(format!("player-{i}")),
        addr: format!("127.0.0.1:{}", 20000 + i % 40000),
        connected_at_ms: 1_764_000_000_000,
        room: None,
        probe: false,
        frames_in: (i * 7 % 1000) as u64 + bump,
        frames_out: (i * 13 % 1000) as u64 + bump,
        errors: (i % 11 == 0) as u64,
        frames_dropped: 0,
        round_trip_us: None,
        node: None,
    }
}

pub fn snapshot(size: &Size) -> Snapshot {
    let peers: Vec<PeerInfo> = (0..size.peers).map(|i| peer(i, 0)).collect();
    let rooms = (0..size.rooms)
        .map(|r| RoomInfo {
            code: format!("R{r:05}"),
            room_id: format!("room-{r}"),
            app: "demo".into(),
            game: "arena".into(),
            max_players: 4,
            supports_authority: true,
            lobby_state: "lobby".into(),
            players: (0..4)
                .map(|k| RoomMember {
                    player_id: format!("pl-{r}-{k}"),
                    name: format!("P{k}"),
                    peer: Some(format!("p{}", r * 4 + k)),
                    ready: k % 2 == 0,
                })
                .collect(),
            spectators: vec![],
            authority: Some(format!("pl-{r}-0")),
            created_at_ms: 1_764_000_000_000,
        })
        .collect();
    Snapshot {
        server: ServerInfo {
            version: "bench".into(),
            listen: "127.0.0.1:7878".into(),
            started_at_ms: 0,
            history: Default::default(),
        },
        apps: vec![AppInfo {
            id: "demo".into(),
            name: "Demo".into(),
            status: AppStatus::Active,
            keys: vec![],
        }],
        peers,
        rooms,
        channels: vec![],
        subscriptions: vec![],
        faults: vec![],
        stats: Stats::default(),
        history: vec![],
        bans: vec![],
        nodes: vec![],
    }
}

/// A realistic burst: peers coming and going, errors, tapped frames.
fn deltas(size: &Size, count: usize, first_seq: u64) -> Vec<Msg> {
    (0..count)
        .map(|i| {
            let event = match i % 4 {
                0 => Event::PeerClosed {
                    peer: format!("p{}", i % size.peers),
                    code: Some(4020),
                    reason: "admin_disconnect".into(),
                },
                1 => Event::ErrorEmitted {
                    peer: Some(format!("p{}", i % size.peers)),
                    dialect: Dialect::Pubsub,
                    code: "channel_not_authorized".into(),
                    delivery: Delivery::Frame,
                    request_id: Some(format!("r{i}")),
                    frame: json!({"type":"error","code":"channel_not_authorized"}).to_string(),
                },
                2 => Event::PeerConnected {
                    peer: PeerInfo {
                        id: format!("n{i}"),
                        dialect: Dialect::Pubsub,
                        app: Some("demo".into()),
                        identity: None,
                        addr: "127.0.0.1:1".into(),
                        connected_at_ms: 0,
                        room: None,
                        probe: false,
                        frames_in: 0,
                        frames_out: 0,
                        errors: 0,
                        frames_dropped: 0,
                        round_trip_us: None,
                        node: None,
                    },
                },
                _ => Event::Frame {
                    peer: format!("p{}", i % size.peers),
                    direction: crate::protocol::admin::Direction::In,
                    text: "{\"type\":\"publish\"}".into(),
                },
            };
            Msg::Server(ServerMessage::Delta {
                seq: first_seq + i as u64,
                at_ms: 0,
                event,
            })
        })
        .collect()
}

fn loaded(size: &Size) -> App {
    let mut app = App::new(Keymap::defaults(), false);
    app.update(Msg::Connection(Connection::Connected));
    app.update(Msg::Resize(200, 50));
    app.update(Msg::Server(ServerMessage::Snapshot {
        seq: 0,
        snapshot: Box::new(snapshot(size)),
    }));
    app
}

fn time<T>(repeat: usize, mut work: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..repeat {
        std::hint::black_box(work());
    }
    start.elapsed() / repeat.max(1) as u32
}

/// The peers view sorted by frames in, largest first: every delta about a peer moves it.
fn sorted_peers(app: &mut App) {
    app.view = View::Peers;
    let state = app.tables.entry(View::Peers);
    state.sort = Some(5);
    state.descending = true;
    // Any message brings the table index up to date with the view and sort just chosen.
    app.update(Msg::Tick(0));
}

/// A peer's counters moved: the delta a busy server sends most.
fn peer_update(size: &Size, seq: u64) -> Msg {
    let i = (seq as usize).wrapping_mul(7919) % size.peers;
    Msg::Server(ServerMessage::Delta {
        seq,
        at_ms: 0,
        event: Event::PeerUpdated { peer: peer(i, seq) },
    })
}

fn redraw(terminal: &mut Terminal<TestBackend>, app: &App) {
    let _ = terminal.draw(|frame| ui::draw(app, frame));
}

pub struct Figures {
    /// The reducer alone, as any client of the admin endpoint could use it.
    pub model_snapshot: Duration,
    pub snapshot: Duration,
    pub deltas_per_event: Duration,
    pub redraw: Vec<(View, Duration)>,
    /// A filter and sort set afresh, up to the rows a frame shows.
    pub filter_sort: Duration,
    /// The same with every row of the filtered table built, as no screen needs.
    pub filter_sort_all_rows: Duration,
    pub sorted_redraw_after_delta: Duration,
    pub sorted_scroll_redraw: Duration,
    /// A full history (as many entries as peers) while closes arrive: one close + redraw.
    pub history_close_redraw: Duration,
}

pub fn measure(size: &Size, repeat: usize) -> Figures {
    let mut model = Model::default();
    let mut model_total = Duration::ZERO;
    let model_repeat = repeat.clamp(1, 5);
    for _ in 0..model_repeat {
        let message = ServerMessage::Snapshot {
            seq: 0,
            snapshot: Box::new(snapshot(size)),
        };
        let start = Instant::now();
        // What the snapshot replaced is freed outside the measurement, as the console does.
        let retired = model.apply(message).retired;
        model_total += start.elapsed();
        drop(retired);
    }
    let model_snapshot = model_total / model_repeat as u32;

    // A snapshot lands on a console showing the sorted peers table, so it pays for the table
    // index as well as the model.
    let mut app = loaded(size);
    sorted_peers(&mut app);
    let mut snapshot_total = Duration::ZERO;
    let snapshot_repeat = repeat.clamp(1, 5);
    for _ in 0..snapshot_repeat {
        let message = Msg::Server(ServerMessage::Snapshot {
            seq: 0,
            snapshot: Box::new(snapshot(size)),
        });
        let start = Instant::now();
        app.update(message);
        // The loop folds the snapshot into the table before the next draw.
        app.settle();
        snapshot_total += start.elapsed();
    }
    let snapshot_cost = snapshot_total / snapshot_repeat as u32;

    let burst = 10_000;
    let mut app = loaded(size);
    let messages = deltas(size, burst, 1);
    let start = Instant::now();
    for message in messages {
        app.update(message);
    }
    app.settle();
    let deltas_per_event = start.elapsed() / burst as u32;

    let mut app = loaded(size);
    let mut terminal = match Terminal::new(TestBackend::new(200, 50)) {
        Ok(terminal) => terminal,
        Err(_) => unreachable!("a test backend cannot fail to start"),
    };
    let redraw_costs = View::ALL
        .iter()
        .map(|view| {
            app.view = *view;
            app.update(Msg::Tick(0));
            let cost = time(repeat, || redraw(&mut terminal, &app));
            (*view, cost)
        })
        .collect();
    let mut app = loaded(size);
    app.view = View::Peers;
    // Two filters that match as many peers (a ninth of them) and neither narrows the other,
    // so that every round filters and sorts from scratch.
    let mut round = 0;
    let filter_sort = time(repeat, || {
        round += 1;
        let state = app.tables.entry(View::Peers);
        state.filter = if round % 2 == 0 {
            "player-1"
        } else {
            "player-2"
        }
        .into();
        state.sort = Some(5);
        state.descending = true;
        // What the loop does before the next frame, and the rows that frame shows.
        app.settle();
        app.table_window(View::Peers, 0, 47).rows.len()
    });
    let mut app = loaded(size);
    let state = app.tables.entry(View::Peers);
    state.filter = "player-1".into();
    state.sort = Some(5);
    state.descending = true;
    let filter_sort_all_rows = time(repeat, || app.table(View::Peers).rows.len());

    // A sorted peers view while deltas arrive: each delta moves one peer within the table's
    // index; scrolling without deltas reads the index as it is.
    let mut app = loaded(size);
    sorted_peers(&mut app);
    let mut seq = 0;
    let sorted_redraw_after_delta = time(repeat.max(100), || {
        seq += 1;
        app.update(peer_update(size, seq));
        app.settle();
        redraw(&mut terminal, &app);
    });
    let history_close_redraw = history_under_closes(size, repeat, &mut terminal);
    let down = crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Down);
    let sorted_scroll_redraw = time(repeat, || {
        app.update(Msg::Key(down));
        redraw(&mut terminal, &app);
    });
    Figures {
        model_snapshot,
        snapshot: snapshot_cost,
        deltas_per_event,
        redraw: redraw_costs,
        filter_sort,
        filter_sort_all_rows,
        sorted_redraw_after_delta,
        sorted_scroll_redraw,
        history_close_redraw,
    }
}

/// A closed peer as the history keeps it.
fn closed(i: usize) -> HistoryEntry {
    HistoryEntry {
        closed_at_ms: 1_764_000_000_000 + i as u64,
        closed: Closed::Peer(Box::new(ClosedPeer {
            peer: peer(i, 0),
            code: Some(1008),
            reason: String::new(),
            rooms: vec![],
            player_id: None,
            last_errors: vec![RecentError {
                at_ms: 1_764_000_000_000 + i as u64,
                dialect: Dialect::SignalFish,
                code: "APP_ID_SUSPENDED".into(),
                frame: "{\"type\":\"Error\"}".into(),
            }],
            recorded_frames: 2,
            refused_joins: Vec::new(),
        })),
    }
}

/// The History view, full (as many entries as the size has peers), while closes flood in:
/// each close pushes the oldest entry out and the view is redrawn.
fn history_under_closes(
    size: &Size,
    repeat: usize,
    terminal: &mut Terminal<TestBackend>,
) -> Duration {
    let mut app = App::new(Keymap::defaults(), false);
    app.update(Msg::Connection(Connection::Connected));
    app.update(Msg::Resize(200, 50));
    let mut with_history = snapshot(&Size { peers: 0, rooms: 0 });
    with_history.server.history = HistoryLimits {
        max_entries: u32::try_from(size.peers).unwrap_or(u32::MAX),
        retain_ms: u64::MAX,
    };
    with_history.history = (0..size.peers).map(closed).collect();
    app.update(Msg::Server(ServerMessage::Snapshot {
        seq: 0,
        snapshot: Box::new(with_history),
    }));
    app.view = View::History;
    app.update(Msg::Tick(0));
    let mut seq = 0;
    time(repeat.max(20), || {
        seq += 1;
        app.update(Msg::Server(ServerMessage::Delta {
            seq,
            at_ms: 1_764_000_000_000,
            event: Event::HistoryAdded {
                entry: closed(size.peers + seq as usize),
            },
        }));
        app.settle();
        redraw(terminal, &app);
    })
}

fn micros(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(big: Duration, small: Duration) -> String {
    format!(
        "{:>7.1}×",
        big.as_secs_f64() / small.as_secs_f64().max(1e-9)
    )
}

/// What the console must stay within at 100,000 peers.
pub const SORTED_DELTA_BUDGET: Duration = Duration::from_millis(5);
pub const SNAPSHOT_BUDGET: Duration = Duration::from_millis(50);
pub const FILTER_SORT_BUDGET: Duration = Duration::from_millis(16);
/// A close arriving while the History view shows 100,000 entries (the most `history.max_entries`
/// keeps): closes flooding in must not stop the console answering keys.
pub const HISTORY_CLOSE_BUDGET: Duration = Duration::from_millis(5);

/// Run the benchmark and print the table.
pub fn run(repeat: usize) -> String {
    let sizes = [
        Size {
            peers: 1_000,
            rooms: 200,
        },
        Size {
            peers: 10_000,
            rooms: 2_000,
        },
        Size {
            peers: 100_000,
            rooms: 20_000,
        },
    ];
    let [a, b, c] = sizes.map(|size| measure(&size, repeat));
    let mut out = String::new();
    out.push_str(&format!(
        "{:<34} {:>13} {:>13} {:>13} {:>8}\n",
        "operation (mean)", "1k peers", "10k peers", "100k peers", "100k/1k"
    ));
    let mut row = |name: &str, x: Duration, y: Duration, z: Duration| {
        out.push_str(&format!(
            "{name:<34} {} {} {} {}\n",
            micros(x),
            micros(y),
            micros(z),
            ratio(z, x)
        ));
    };
    row(
        "apply snapshot: model alone",
        a.model_snapshot,
        b.model_snapshot,
        c.model_snapshot,
    );
    row(
        "snapshot → sorted peers view",
        a.snapshot,
        b.snapshot,
        c.snapshot,
    );
    row(
        "apply one delta (burst of 10k)",
        a.deltas_per_event,
        b.deltas_per_event,
        c.deltas_per_event,
    );
    for (((view, x), (_, y)), (_, z)) in a.redraw.iter().zip(b.redraw.iter()).zip(c.redraw.iter()) {
        row(&format!("full redraw 200x50: {}", view.title()), *x, *y, *z);
    }
    row("filter + sort", a.filter_sort, b.filter_sort, c.filter_sort);
    row(
        "filter + sort, every row built",
        a.filter_sort_all_rows,
        b.filter_sort_all_rows,
        c.filter_sort_all_rows,
    );
    row(
        "sorted peers: delta + redraw",
        a.sorted_redraw_after_delta,
        b.sorted_redraw_after_delta,
        c.sorted_redraw_after_delta,
    );
    row(
        "sorted peers: key Down + redraw",
        a.sorted_scroll_redraw,
        b.sorted_scroll_redraw,
        c.sorted_scroll_redraw,
    );
    row(
        "history of n: close + redraw",
        a.history_close_redraw,
        b.history_close_redraw,
        c.history_close_redraw,
    );
    let verdict = |cost: Duration, budget: Duration| {
        if cost <= budget {
            "within"
        } else {
            "OVER"
        }
    };
    out.push_str(&format!(
        "\nbudget at 100k peers: sorted delta + redraw {:.2} ms (≤ {} ms: {}), snapshot → sorted peers view {:.1} ms (≤ {} ms: {}), filter + sort {:.1} ms (≤ {} ms: {}), history close + redraw {:.2} ms (≤ {} ms: {})\n",
        c.sorted_redraw_after_delta.as_secs_f64() * 1e3,
        SORTED_DELTA_BUDGET.as_millis(),
        verdict(c.sorted_redraw_after_delta, SORTED_DELTA_BUDGET),
        c.snapshot.as_secs_f64() * 1e3,
        SNAPSHOT_BUDGET.as_millis(),
        verdict(c.snapshot, SNAPSHOT_BUDGET),
        c.filter_sort.as_secs_f64() * 1e3,
        FILTER_SORT_BUDGET.as_millis(),
        verdict(c.filter_sort, FILTER_SORT_BUDGET),
        c.history_close_redraw.as_secs_f64() * 1e3,
        HISTORY_CLOSE_BUDGET.as_millis(),
        verdict(c.history_close_redraw, HISTORY_CLOSE_BUDGET),
    ));
    out
}
