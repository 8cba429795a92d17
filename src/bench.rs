//! `relaydeck bench`: how the console copes with a big server, measured side by side at two
//! sizes so the figures read as ratios (how the cost grows), not as absolute promises.
//!
//! Measured per size: applying a burst of deltas to the app state, a full redraw of every
//! view into a 200×50 test terminal, and filtering plus sorting the peers table.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

use crate::catalog::{Delivery, Dialect};
use crate::console::app::{App, Connection, Msg, View};
use crate::console::keymap::Keymap;
use crate::console::theme::Theme;
use crate::console::ui;
use crate::protocol::admin::{
    AppInfo, AppStatus, Event, PeerInfo, RoomInfo, RoomMember, ServerInfo, ServerMessage, Snapshot,
    Stats,
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

pub fn snapshot(size: &Size) -> Snapshot {
    let peers: Vec<PeerInfo> = (0..size.peers)
        .map(|i| PeerInfo {
            id: format!("p{i}"),
            dialect: DIALECTS[i % DIALECTS.len()],
            app: Some("demo".into()),
            identity: Some(format!("player-{i}")),
            addr: format!("127.0.0.1:{}", 20000 + i % 40000),
            connected_at_ms: 1_764_000_000_000,
            room: None,
            probe: false,
            frames_in: (i * 7 % 1000) as u64,
            frames_out: (i * 13 % 1000) as u64,
            errors: (i % 11 == 0) as u64,
        })
        .collect();
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
    start.elapsed() / repeat as u32
}

pub struct Figures {
    pub snapshot: Duration,
    pub deltas_per_event: Duration,
    pub redraw: Vec<(View, Duration)>,
    pub filter_sort: Duration,
    pub sorted_redraw_after_delta: Duration,
    pub sorted_scroll_redraw: Duration,
}

pub fn measure(size: &Size, repeat: usize) -> Figures {
    let snapshot_cost = time(repeat.max(1), || loaded(size));
    let burst = 10_000;
    let mut app = loaded(size);
    let messages = deltas(size, burst, 1);
    let start = Instant::now();
    for message in messages {
        app.update(message);
    }
    let deltas_per_event = start.elapsed() / burst as u32;

    let theme = Theme::built_in("default", false);
    let mut app = loaded(size);
    let mut terminal = match Terminal::new(TestBackend::new(200, 50)) {
        Ok(terminal) => terminal,
        Err(_) => unreachable!("a test backend cannot fail to start"),
    };
    let redraw = View::ALL
        .iter()
        .map(|view| {
            app.view = *view;
            let cost = time(repeat, || {
                let _ = terminal.draw(|frame| ui::draw(&mut app, &theme, frame));
            });
            (*view, cost)
        })
        .collect();
    let mut app = loaded(size);
    let state = app.tables.entry(View::Peers).or_default();
    state.filter = "player-1".into();
    state.sort = Some(5);
    state.descending = true;
    let filter_sort = time(repeat, || app.table(View::Peers).rows.len());

    // A sorted peers view while deltas arrive: each delta invalidates the cached order, so
    // every draw re-sorts; scrolling without deltas reuses the order.
    let mut app = loaded(size);
    app.view = View::Peers;
    let state = app.tables.entry(View::Peers).or_default();
    state.sort = Some(5);
    state.descending = true;
    let mut seq = 0;
    let sorted_redraw_after_delta = time(repeat, || {
        seq += 1;
        app.update(Msg::Server(ServerMessage::Delta {
            seq,
            at_ms: 0,
            event: Event::Stats {
                stats: Stats::default(),
            },
        }));
        let _ = terminal.draw(|frame| ui::draw(&mut app, &theme, frame));
    });
    let down = crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Down);
    let sorted_scroll_redraw = time(repeat, || {
        app.update(Msg::Key(down));
        let _ = terminal.draw(|frame| ui::draw(&mut app, &theme, frame));
    });
    Figures {
        snapshot: snapshot_cost,
        deltas_per_event,
        redraw,
        filter_sort,
        sorted_redraw_after_delta,
        sorted_scroll_redraw,
    }
}

fn micros(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(big: Duration, small: Duration) -> String {
    format!(
        "{:>6.1}×",
        big.as_secs_f64() / small.as_secs_f64().max(1e-9)
    )
}

/// Run the benchmark and print the table.
pub fn run(repeat: usize) -> String {
    let small = Size {
        peers: 1_000,
        rooms: 200,
    };
    let big = Size {
        peers: 10_000,
        rooms: 2_000,
    };
    let a = measure(&small, repeat);
    let b = measure(&big, repeat);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<34} {:>13} {:>13} {:>8}\n",
        "operation (mean)", "1k peers", "10k peers", "10k/1k"
    ));
    let mut row = |name: &str, x: Duration, y: Duration| {
        out.push_str(&format!(
            "{name:<34} {} {} {}\n",
            micros(x),
            micros(y),
            ratio(y, x)
        ));
    };
    row("apply snapshot", a.snapshot, b.snapshot);
    row(
        "apply one delta (burst of 10k)",
        a.deltas_per_event,
        b.deltas_per_event,
    );
    for ((view, x), (_, y)) in a.redraw.iter().zip(b.redraw.iter()) {
        row(&format!("full redraw 200x50: {}", view.title()), *x, *y);
    }
    row("filter + sort peers table", a.filter_sort, b.filter_sort);
    row(
        "sorted peers: delta + redraw",
        a.sorted_redraw_after_delta,
        b.sorted_redraw_after_delta,
    );
    row(
        "sorted peers: key Down + redraw",
        a.sorted_scroll_redraw,
        b.sorted_scroll_redraw,
    );
    out
}
