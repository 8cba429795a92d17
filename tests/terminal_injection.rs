//! Text that clients choose never drives the operator's terminal. Snapshots and deltas whose
//! every name, reason, frame and address is made of escape sequences (OSC 2 titles, OSC 52
//! clipboard writes, cursor movement), C1 controls, bidi overrides, wide and zero-width
//! characters are drawn on every view, detail and overlay of the console:
//!
//! - the panes themselves leave no control or bidi character in any cell (checked on
//!   `ui::draw_panes`, before the last-line defence of `ui::draw` looks at the frame);
//! - what reaches the terminal keeps its layout: every row adds up to exactly the screen's
//!   width with no cell that takes no column, and the borders at both edges stay in place.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use proptest::prelude::*;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use relaydeck::catalog::{Delivery, Dialect, Severity};
use relaydeck::console::app::{App, Connection, Detail, Mode, Msg, View};
use relaydeck::console::composer::Target;
use relaydeck::console::keymap::{Action, Keymap};
use relaydeck::console::ui;
use relaydeck::protocol::admin::{
    AppInfo, AppStatus, BanInfo, BanTarget, ChannelInfo, Closed, ClosedPeer, ClosedRoom, Direction,
    Event, FaultInfo, FaultTarget, HistoryEntry, KeyInfo, NodeInfo, PeerInfo, RecentError,
    RoomInfo, RoomMember, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};
use relaydeck::text::is_hidden;
use serde_json::json;

const T0: u64 = 1_764_000_000_000;

/// What a hostile client puts in a name: the sequences the issue names, and characters that
/// take two columns, none, or reorder what follows.
const FRAGMENTS: &[&str] = &[
    "\u{1b}]2;PWNED-TITLE\u{7}",
    "\u{1b}]52;c;cHduZWQ=\u{7}",
    "\u{1b}[31mRED\u{1b}[0m",
    "\u{1b}[2J\u{1b}[1;1H",
    "\u{1b}[5A",
    "\u{9b}6n",
    "\u{9d}0;x\u{9c}",
    "\u{202e}gnp.exe",
    "\u{2066}\u{2069}\u{200f}\u{61c}",
    "\r\n\t\u{8}\u{7f}\u{0}",
    "名前のプレイヤー",
    "🦀",
    "e\u{301}",
    "\u{301}",
    "\u{200d}\u{feff}\u{e0041}\u{2028}",
    "WWGV8B",
];

fn hostile() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9 _/:.-]{0,8}",
        2 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(part, 0..5).prop_map(|parts| parts.concat())
}

/// Hands out the generated strings one after another (round and round).
struct Strings {
    all: Vec<String>,
    next: usize,
}

impl Strings {
    fn take(&mut self) -> String {
        let text = self.all[self.next % self.all.len()].clone();
        self.next += 1;
        text
    }
}

fn peer(id: &str, dialect: Dialect, s: &mut Strings, room: Option<String>) -> PeerInfo {
    PeerInfo {
        id: id.into(),
        dialect,
        app: Some(s.take()),
        identity: Some(s.take()),
        addr: s.take(),
        connected_at_ms: T0,
        room,
        probe: false,
        frames_in: 12,
        frames_out: 30,
        errors: 2,
        frames_dropped: 0,
        round_trip_us: None,
        node: Some(s.take()),
    }
}

fn room(code: &str, s: &mut Strings) -> RoomInfo {
    let player_id = s.take();
    RoomInfo {
        code: code.into(),
        room_id: s.take(),
        app: s.take(),
        game: s.take(),
        max_players: 4,
        supports_authority: true,
        lobby_state: s.take(),
        players: vec![
            RoomMember {
                player_id: player_id.clone(),
                name: s.take(),
                peer: Some("p2".into()),
                ready: true,
            },
            RoomMember {
                player_id: s.take(),
                name: s.take(),
                peer: None,
                ready: false,
            },
        ],
        spectators: vec![RoomMember {
            player_id: s.take(),
            name: s.take(),
            peer: Some("p3".into()),
            ready: false,
        }],
        authority: Some(player_id),
        created_at_ms: T0,
    }
}

/// The console after a snapshot and deltas built from `strings`, with a hostile key bound in
/// the user's keymap, a pasted log, a status line and a composer answer.
fn hostile_console(strings: Vec<String>) -> (App, Vec<Detail>) {
    let mut s = Strings {
        all: if strings.is_empty() {
            vec![String::new()]
        } else {
            strings
        },
        next: 0,
    };
    let code = s.take();
    // One peer id is hostile too: ids travel through keys, titles and the command line.
    let odd_id = format!("p5{}", s.take());
    let mut keymap = Keymap::defaults();
    // Any key but those the tests press for what they do by default (`?` help, `e` compose,
    // `x` kick, `ctrl-s` save the paste): a user may rebind those too, but then the tests'
    // keystrokes would mean something else.
    let mut hostile_key = s.take();
    if ["?", "e", "x", "ctrl-s"].contains(&hostile_key.as_str()) {
        hostile_key.insert_str(0, "alt-");
    }
    keymap.merge(BTreeMap::from([(hostile_key, Action::KICK)]));
    let mut app = App::new(keymap, false);
    app.update(Msg::Connection(Connection::Connected));
    let channel_app = s.take();
    let channel_name = s.take();
    let closed_peer = peer("p9", Dialect::SignalFish, &mut s, Some(code.clone()));
    let closed_room = room(&format!("{code}-old"), &mut s);
    let snapshot = Snapshot {
        server: ServerInfo {
            version: s.take(),
            listen: s.take(),
            started_at_ms: T0,
            history: Default::default(),
        },
        apps: vec![AppInfo {
            id: s.take(),
            name: s.take(),
            status: AppStatus::Active,
            keys: vec![KeyInfo {
                id: s.take(),
                dialect: Dialect::Pubsub,
                grants: vec![s.take(), s.take()],
            }],
        }],
        peers: vec![
            peer("p1", Dialect::Pubsub, &mut s, None),
            peer("p2", Dialect::SignalFish, &mut s, Some(code.clone())),
            peer("p3", Dialect::Talo, &mut s, None),
            peer("p4", Dialect::Flow, &mut s, None),
            peer(&odd_id, Dialect::Talo, &mut s, Some(code.clone())),
        ],
        rooms: vec![room(&code, &mut s)],
        channels: vec![ChannelInfo {
            dialect: Dialect::Pubsub,
            app: channel_app.clone(),
            name: channel_name.clone(),
            members: vec!["p1".into(), odd_id.clone()],
            messages: 7,
        }],
        subscriptions: vec![SubscriptionInfo {
            peer: "p4".into(),
            dialect: Dialect::Flow,
            id: s.take(),
            topic: s.take(),
            arguments: json!({ "room": s.take() }),
        }],
        faults: vec![FaultInfo {
            id: 1,
            target: FaultTarget::Peer { peer: "p1".into() },
            code: s.take(),
            remaining: 1,
        }],
        stats: Stats {
            frames_in: 1,
            frames_out: 2,
            errors: 3,
            peers_by_dialect: Default::default(),
            errors_by_code: [(s.take(), 2), ("pubsub:channel_not_authorized".into(), 1)].into(),
            channel_messages: Default::default(),
        },
        history: vec![HistoryEntry {
            closed_at_ms: T0 - 60_000,
            closed: Closed::Room(Box::new(ClosedRoom {
                room: closed_room.clone(),
                reason: s.take(),
            })),
        }],
        bans: vec![],
        nodes: vec![NodeInfo {
            node_id: s.take(),
            listen: s.take(),
            started_at_ms: T0,
            heartbeat_at_ms: T0,
            peers: 3,
            frames_in: 1,
            frames_out: 1,
            errors: 0,
            redis_ok: true,
            alive: true,
            local: true,
        }],
    };
    app.update(Msg::Server(ServerMessage::Snapshot {
        seq: 10,
        snapshot: Box::new(snapshot),
    }));
    let mut renamed = peer("p1", Dialect::Pubsub, &mut s, None);
    renamed.identity = Some(s.take());
    let deltas = vec![
        Event::PeerUpdated { peer: renamed },
        Event::ErrorEmitted {
            peer: Some("p1".into()),
            dialect: Dialect::Pubsub,
            code: "channel_not_authorized".into(),
            delivery: Delivery::Frame,
            request_id: Some(s.take()),
            frame: s.take(),
        },
        Event::ErrorEmitted {
            peer: Some(odd_id.clone()),
            dialect: Dialect::Talo,
            code: s.take(),
            delivery: Delivery::Close,
            request_id: None,
            frame: s.take(),
        },
        Event::RoomUpdated {
            room: room(&code, &mut s),
        },
        Event::ChannelJoined {
            dialect: Dialect::Pubsub,
            app: s.take(),
            channel: s.take(),
            peer: "p2".into(),
        },
        Event::SubscriptionAdded {
            subscription: SubscriptionInfo {
                peer: "p4".into(),
                dialect: Dialect::Flow,
                id: s.take(),
                topic: s.take(),
                arguments: json!([s.take()]),
            },
        },
        Event::AppStatusChanged {
            app: s.take(),
            status: AppStatus::Suspended,
            by: s.take(),
        },
        Event::PeerClosed {
            peer: "p9".into(),
            code: Some(4020),
            reason: s.take(),
        },
        Event::HistoryAdded {
            entry: HistoryEntry {
                closed_at_ms: T0 + 1000,
                closed: Closed::Peer(Box::new(ClosedPeer {
                    peer: closed_peer,
                    code: Some(4020),
                    reason: s.take(),
                    rooms: vec![s.take(), code.clone()],
                    player_id: Some(s.take()),
                    last_errors: vec![RecentError {
                        at_ms: T0,
                        dialect: Dialect::SignalFish,
                        code: s.take(),
                        frame: s.take(),
                    }],
                    recorded_frames: 3,
                    refused_joins: Vec::new(),
                })),
            },
        },
        Event::BanAdded {
            ban: BanInfo {
                id: 3,
                target: BanTarget::Identity {
                    app: Some(s.take()),
                    identity: s.take(),
                },
                reason: s.take(),
                by: s.take(),
                created_at_ms: T0,
                until_ms: T0 + 3_600_000,
            },
        },
        Event::Stats {
            stats: Stats {
                errors_by_code: [(s.take(), 9)].into(),
                ..Stats::default()
            },
        },
        // Last, so that `e` in the log opens it in the composer.
        Event::Frame {
            peer: "p1".into(),
            direction: Direction::In,
            text: s.take(),
        },
    ];
    for (offset, event) in deltas.into_iter().enumerate() {
        app.update(Msg::Server(ServerMessage::Delta {
            seq: 11 + offset as u64,
            at_ms: T0 + 1000 * offset as u64,
            event,
        }));
    }
    app.update(Msg::Notice(s.take(), Severity::Warning));
    let details = vec![
        Detail::Peer("p1".into()),
        Detail::Peer(odd_id.clone()),
        Detail::Room(code.clone()),
        Detail::Channel(Dialect::Pubsub, channel_app, channel_name),
        Detail::History("p9".into()),
        Detail::History(format!("{}@{}", closed_room.code, T0 - 60_000)),
        Detail::Code("pubsub:channel_not_authorized".into()),
    ];
    (app, details)
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// `(x, y, symbol)` of the first cell holding a control or bidi character.
fn hidden_cell(buffer: &Buffer) -> Option<(u16, u16, String)> {
    buffer.area.positions().find_map(|p| {
        let symbol = buffer[p].symbol();
        symbol
            .chars()
            .any(is_hidden)
            .then(|| (p.x, p.y, symbol.to_owned()))
    })
}

fn row_text(buffer: &Buffer, y: u16) -> String {
    (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect()
}

/// The layout a terminal will show: each row's cells take exactly the screen's width (a wide
/// symbol covers the cell after it, none takes no column), and the body's edges are borders.
fn layout_problem(buffer: &Buffer) -> Option<String> {
    let (width, height) = (buffer.area.width, buffer.area.height);
    for y in 0..height {
        let mut x = 0u16;
        while x < width {
            let symbol = buffer[(x, y)].symbol();
            let columns = relaydeck::text::width(symbol);
            if columns == 0 {
                return Some(format!(
                    "({x},{y}) {symbol:?} takes no column:\n{}",
                    row_text(buffer, y)
                ));
            }
            x += u16::try_from(columns).unwrap_or(u16::MAX);
        }
        if x != width {
            return Some(format!(
                "row {y} takes {x} columns of {width}:\n{}",
                row_text(buffer, y)
            ));
        }
    }
    // The body: between the two header lines and the two footer lines.
    for y in 2..height.saturating_sub(2) {
        let left = buffer[(0, y)].symbol();
        let right = buffer[(width - 1, y)].symbol();
        if !["│", "┌", "└"].contains(&left) || !["│", "┐", "┘"].contains(&right) {
            return Some(format!(
                "row {y} lost its borders ({left:?} … {right:?}):\n{}",
                row_text(buffer, y)
            ));
        }
    }
    None
}

fn check(app: &App, width: u16, height: u16, what: &str) -> Result<(), TestCaseError> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw_panes(app, frame)).unwrap();
    if let Some((x, y, symbol)) = hidden_cell(terminal.backend().buffer()) {
        return Err(TestCaseError::fail(format!(
            "{what} at {width}×{height}: cell ({x},{y}) holds {symbol:?}:\n{}",
            row_text(terminal.backend().buffer(), y)
        )));
    }
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    if let Some((x, y, symbol)) = hidden_cell(buffer) {
        return Err(TestCaseError::fail(format!(
            "{what}: ({x},{y}) {symbol:?} after draw"
        )));
    }
    if let Some(problem) = layout_problem(buffer) {
        return Err(TestCaseError::fail(format!(
            "{what} at {width}×{height}: {problem}"
        )));
    }
    Ok(())
}

/// Every view, every detail, the help of the hostile keymap, a confirmation naming hostile
/// things, the paste editor and the pasted log's timeline, `:find` results, the composer
/// with a hostile frame in its editor and a hostile answer.
fn draw_everything(strings: Vec<String>, width: u16, height: u16) -> Result<(), TestCaseError> {
    let (mut app, details) = hostile_console(strings.clone());
    let views = View::ALL.into_iter().chain([
        View::History,
        View::Bans,
        View::Find,
        View::Timeline,
        View::Nodes,
    ]);
    for view in views {
        app.view = view;
        app.detail = None;
        check(&app, width, height, &format!("view {view:?}"))?;
    }
    app.view = View::Peers;
    for detail in details {
        app.detail = Some(detail.clone());
        check(&app, width, height, &format!("detail {detail:?}"))?;
    }
    app.detail = None;

    app.update(key(KeyCode::Char('?')));
    assert_eq!(app.mode, Mode::Help);
    check(&app, width, height, "help with a custom keymap")?;
    app.mode = Mode::Normal;

    // A kick of each peer in turn: the question names its identity and address.
    for index in 0..5 {
        app.view = View::Peers;
        app.mode = Mode::Normal;
        app.tables.entry(View::Peers).selected = index;
        app.update(key(KeyCode::Char('x')));
        check(&app, width, height, "a kick's confirmation")?;
    }
    app.mode = Mode::Normal;

    let query: String = strings.first().cloned().unwrap_or_default();
    app.run_command_line(&format!("find {query}"));
    check(&app, width, height, "find results")?;
    app.run_command_line(&format!(
        "find {}",
        &query.chars().take(2).collect::<String>()
    ));
    check(&app, width, height, "find results")?;
    app.mode = Mode::Normal;
    app.run_command_line(&format!("kick {query}"));
    check(&app, width, height, "a status line")?;

    app.run_command_line("paste");
    let pasted: String = strings
        .iter()
        .map(|s| {
            format!(
                "{s} <- {}\n14:02:0{} WebSocket closed: CLOSED code=4020 reason='{s}'\n",
                json!({"type": "Error", "data": {"message": s, "error_code": "RATE_LIMIT_EXCEEDED", "player_id": s}}),
                s.len() % 10
            )
        })
        .collect();
    app.update(Msg::Paste(pasted));
    check(&app, width, height, "the paste editor")?;
    app.update(ctrl('s'));
    app.mode = Mode::Normal;
    app.view = View::Timeline;
    check(&app, width, height, "the pasted log's timeline")?;

    // `e` on the live log opens its newest line (a hostile frame) in the composer.
    app.view = View::Log;
    app.update(key(KeyCode::Char('e')));
    app.mode = Mode::Normal;
    app.view = View::Composer;
    check(&app, width, height, "the composer's editor")?;
    app.composer.target = Target::Url("ws://127.0.0.1:9/".into());
    for text in strings.iter().take(4) {
        app.update(Msg::DirectReply(text.clone()));
        app.update(Msg::DirectReply(
            json!({"type": "error", "code": "channel_not_authorized", "message": text}).to_string(),
        ));
    }
    check(&app, width, height, "the composer's answers")?;
    Ok(())
}

/// The case of the issue, always run: a Talo identity and a Signal Fish player and room name
/// carrying a title sequence. The escapes show as text, findable.
#[test]
fn the_issues_title_sequence_is_shown_escaped_on_every_screen() {
    let eve = "Eve\u{1b}]2;PWNED-TITLE\u{7}\u{1b}[31mRED\u{1b}[0m".to_owned();
    let strings = vec![
        eve.clone(),
        "\u{202e}KCAB".into(),
        "名前の🦀\u{200d}🦀".into(),
    ];
    draw_everything(strings.clone(), 120, 30).unwrap();
    draw_everything(strings.clone(), 60, 18).unwrap();

    let (mut app, _) = hostile_console(strings);
    app.view = View::Peers;
    let mut terminal = Terminal::new(TestBackend::new(160, 30)).unwrap();
    terminal.draw(|frame| ui::draw(&app, frame)).unwrap();
    let screen = terminal.backend().to_string();
    assert!(
        screen.contains("Eve\\u{1b}]2;PWNED-TITLE\\u{7}"),
        "{screen}"
    );
    assert!(screen.contains("\\u{202e}KCAB"), "{screen}");
    // `e` on the log puts the hostile frame, as sent, in the composer's editor, whose cells
    // the composer neutralises itself.
    app.view = View::Log;
    app.update(key(KeyCode::Char('e')));
    assert_eq!(app.view, View::Composer);
    assert!(
        app.composer
            .editor
            .lines()
            .iter()
            .any(|l| l.chars().any(is_hidden)),
        "{:?}",
        app.composer.editor.lines()
    );
    // The model keeps what was sent: `:find` matches the real characters.
    assert!(app
        .model
        .peers
        .values()
        .any(|p| p.identity.as_deref() == Some(eve.as_str())));
}

/// Found by the property below: a hostile key `?` bound to kick took the help key the test
/// presses.
#[test]
fn a_hostile_binding_of_a_key_the_test_presses_is_moved_aside() {
    draw_everything(vec![String::new(), String::new(), "?".to_owned()], 40, 14).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_client_text_reaches_the_terminal_as_control_or_breaks_a_column(
        strings in prop::collection::vec(hostile(), 1..40),
        width in 40u16..170,
        height in 14u16..45,
    ) {
        draw_everything(strings, width, height)?;
    }
}

/// Found by the property above: a wide name wrapped onto the last column of a confirmation.
#[test]
fn a_confirmation_wrapping_wide_characters_keeps_its_borders() {
    draw_everything(
        vec![
            "\u{1b}[5Aa-a0AAe\u{301}0_".into(),
            "名前のプレイヤー ".into(),
        ],
        62,
        14,
    )
    .unwrap();
}
