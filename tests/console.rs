//! The console's screens, drawn to ratatui's TestBackend and compared with reviewed snapshots,
//! and its update logic driven directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use relaydeck::catalog::{Delivery, Dialect};
use relaydeck::console::app::{App, Connection, Detail, Effect, Mode, Msg, ReproProgress, View};
use relaydeck::console::keymap::Keymap;
use relaydeck::console::log::LogKind;
use relaydeck::console::ui;
use relaydeck::protocol::admin::{
    AppInfo, AppStatus, BanInfo, BanTarget, ChannelInfo, Closed, ClosedPeer, ClosedRoom, Command,
    CommandResult, Direction, Event, HistoryEntry, KeyInfo, NodeInfo, PeerInfo, RecentError,
    RoomInfo, RoomMember, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};
use relaydeck::session::replay::{Outcome, SeenFrame, StepReport};
use serde_json::json;

const T0: u64 = 1_764_000_000_000;

fn peer(
    id: &str,
    dialect: Dialect,
    app: &str,
    identity: &str,
    room: Option<&str>,
    errors: u64,
) -> PeerInfo {
    PeerInfo {
        id: id.into(),
        dialect,
        app: Some(app.into()),
        identity: Some(identity.into()),
        addr: format!(
            "127.0.0.1:5{:04}",
            id.trim_start_matches('p').parse::<u32>().unwrap_or(0)
        ),
        connected_at_ms: T0,
        room: room.map(str::to_owned),
        probe: false,
        frames_in: 12,
        frames_out: 30,
        errors,
        frames_dropped: 0,
        round_trip_us: None,
        node: None,
    }
}

fn fixture() -> Snapshot {
    Snapshot {
        server: ServerInfo {
            version: "0.1.0".into(),
            listen: "127.0.0.1:7878".into(),
            started_at_ms: T0,
            history: Default::default(),
        },
        apps: vec![
            AppInfo {
                id: "demo".into(),
                name: "Demo".into(),
                status: AppStatus::Active,
                keys: vec![KeyInfo {
                    id: "pk_demo".into(),
                    dialect: Dialect::Pubsub,
                    grants: vec!["demo/**".into(), "publish".into()],
                }],
            },
            AppInfo {
                id: "suspended-app".into(),
                name: "Suspended app".into(),
                status: AppStatus::Suspended,
                keys: vec![],
            },
        ],
        peers: vec![
            peer("p1", Dialect::Pubsub, "demo", "peer-ada", None, 1),
            peer(
                "p2",
                Dialect::SignalFish,
                "demo",
                "Alice",
                Some("WWGV8B"),
                0,
            ),
            peer("p3", Dialect::SignalFish, "demo", "Bob", Some("WWGV8B"), 0),
            peer("p4", Dialect::Flow, "demo", "flow-1", None, 0),
            peer("p5", Dialect::Talo, "demo", "alice", None, 2),
        ],
        rooms: vec![RoomInfo {
            code: "WWGV8B".into(),
            room_id: "16dde87b".into(),
            app: "demo".into(),
            game: "demo".into(),
            max_players: 4,
            supports_authority: true,
            lobby_state: "lobby".into(),
            players: vec![
                RoomMember {
                    player_id: "d64d4457".into(),
                    name: "Alice".into(),
                    peer: Some("p2".into()),
                    ready: true,
                },
                RoomMember {
                    player_id: "93f3d64e".into(),
                    name: "Bob".into(),
                    peer: Some("p3".into()),
                    ready: false,
                },
            ],
            spectators: vec![],
            authority: Some("d64d4457".into()),
            created_at_ms: T0,
        }],
        channels: vec![ChannelInfo {
            dialect: Dialect::Pubsub,
            app: "demo".into(),
            name: "demo/lobby".into(),
            members: vec!["p1".into()],
            messages: 42,
        }],
        subscriptions: vec![SubscriptionInfo {
            peer: "p4".into(),
            dialect: Dialect::Flow,
            id: "sub1".into(),
            topic: "rooms".into(),
            arguments: json!({}),
        }],
        faults: vec![],
        stats: Stats {
            frames_in: 100,
            frames_out: 250,
            errors: 3,
            peers_by_dialect: Default::default(),
            errors_by_code: [
                ("pubsub:channel_not_authorized".to_owned(), 2),
                ("talo:NO_PLAYER_FOUND".to_owned(), 1),
            ]
            .into(),
            channel_messages: [("pubsub/demo/demo/lobby".to_owned(), 42)].into(),
        },
        history: vec![],
        bans: vec![],
        nodes: vec![],
    }
}

fn loaded_app(readonly: bool) -> App {
    let mut app = App::new(Keymap::defaults(), readonly);
    app.update(Msg::Connection(Connection::Connected));
    app.update(Msg::Server(ServerMessage::Snapshot {
        seq: 10,
        snapshot: Box::new(fixture()),
    }));
    let deltas = [
        Event::ErrorEmitted {
            peer: Some("p1".into()),
            dialect: Dialect::Pubsub,
            code: "channel_not_authorized".into(),
            delivery: Delivery::Frame,
            request_id: Some("pub-2".into()),
            frame: r#"{"type":"error","requestId":"pub-2","code":"channel_not_authorized","message":"not authorized: other-app/room-1"}"#.into(),
        },
        Event::Frame { peer: "p1".into(), direction: Direction::In, text: r#"{"type":"publish","channel":"demo/lobby","data":1}"#.into() },
        Event::PeerClosed { peer: "p5".into(), code: Some(4020), reason: "admin_disconnect".into() },
        Event::Stats { stats: fixture().stats },
    ];
    for (offset, event) in deltas.into_iter().enumerate() {
        app.update(Msg::Server(ServerMessage::Delta {
            seq: 11 + offset as u64,
            at_ms: T0 + 1000 * offset as u64,
            event,
        }));
    }
    app.status = None;
    app
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(app, frame)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn every_view_at_80x24() {
    for view in View::ALL {
        let mut app = loaded_app(false);
        app.view = view;
        insta::assert_snapshot!(
            format!("view_{}", view.title().to_lowercase()),
            render(&app, 80, 24)
        );
    }
}

#[test]
fn peers_view_at_120x30() {
    let mut app = loaded_app(false);
    app.view = View::Peers;
    insta::assert_snapshot!(render(&app, 120, 30));
}

#[test]
fn details_help_and_confirmation() {
    let mut app = loaded_app(false);
    app.view = View::Rooms;
    app.detail = Some(Detail::Room("WWGV8B".into()));
    insta::assert_snapshot!("detail_room", render(&app, 80, 24));

    let mut app = loaded_app(false);
    app.view = View::Peers;
    app.detail = Some(Detail::Peer("p1".into()));
    insta::assert_snapshot!("detail_peer", render(&app, 80, 24));

    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('?')));
    insta::assert_snapshot!("help", render(&app, 80, 24));

    let mut app = loaded_app(false);
    app.view = View::Peers;
    app.update(key(KeyCode::Char('x')));
    insta::assert_snapshot!("confirm_kick", render(&app, 80, 24));

    let mut app = loaded_app(false);
    app.update(Msg::Connection(Connection::Lost {
        error: "connection refused".into(),
        retry_in_ms: 2000,
        attempt: 3,
    }));
    insta::assert_snapshot!("connection_lost", render(&app, 80, 24));
}

#[test]
fn kick_asks_first_and_sends_exactly_the_confirmed_command() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('2')));
    app.update(key(KeyCode::Char('j')));
    assert!(
        app.update(key(KeyCode::Char('x'))).is_empty(),
        "nothing is sent before confirming"
    );
    let Mode::Confirm { question, .. } = &app.mode else {
        panic!("no confirmation")
    };
    assert!(
        question.contains("p2") && question.contains("4020"),
        "{question}"
    );
    let effects = app.update(key(KeyCode::Char('y')));
    assert!(
        matches!(&effects[..], [Effect::Send(envelope)] if envelope.command == Command::Kick { peer: "p2".into(), reason: None })
    );
    // The peer stays until the server says it closed.
    assert!(app.model.peer("p2").is_some());
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0,
        event: Event::PeerClosed {
            peer: "p2".into(),
            code: Some(4020),
            reason: "admin_disconnect".into(),
        },
    }));
    assert!(app.model.peer("p2").is_none());
}

#[test]
fn cancelling_sends_nothing_and_readonly_refuses_actions() {
    let mut app = loaded_app(false);
    app.view = View::Peers;
    app.update(key(KeyCode::Char('x')));
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.mode, Mode::Normal);

    let mut readonly = loaded_app(true);
    readonly.view = View::Peers;
    assert!(readonly.update(key(KeyCode::Char('x'))).is_empty());
    assert_eq!(readonly.mode, Mode::Normal);
    assert!(readonly.run_command_line("suspend demo").is_empty());
    assert!(readonly.status.as_ref().unwrap().0.contains("read-only"));
}

#[test]
fn the_command_line_switches_views_completes_and_confirms() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char(':')));
    for c in "ro".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Tab));
    assert_eq!(app.command_line, "rooms ");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.view, View::Rooms);

    app.update(key(KeyCode::Char(':')));
    for c in "suspend d".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Tab));
    assert_eq!(app.command_line, "suspend demo ");
    app.update(key(KeyCode::Enter));
    let Mode::Confirm { question, command } = &app.mode else {
        panic!("no confirmation")
    };
    assert!(
        question.contains("demo") && question.contains("suspended"),
        "{question}"
    );
    assert_eq!(
        *command,
        Command::SetAppStatus {
            app: "demo".into(),
            status: AppStatus::Suspended
        }
    );

    let mut app = loaded_app(false);
    assert!(app.run_command_line("teleport").is_empty());
    assert!(app.status.unwrap().0.contains("unknown command"));
}

#[test]
fn filters_and_sorting_apply_to_tables() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('2')));
    app.update(key(KeyCode::Char('/')));
    for c in "signal".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Enter));
    let rows = app.table(View::Peers).rows;
    assert_eq!(
        rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["p2", "p3"]
    );
    app.update(key(KeyCode::Esc));
    assert_eq!(app.table(View::Peers).rows.len(), 4);

    // Sort by the ERR column (index 7), descending after the second press.
    let state = app.tables.entry(View::Peers);
    state.sort = Some(7);
    state.descending = true;
    assert_eq!(app.table(View::Peers).rows[0].key, "p1");
}

#[test]
fn a_gap_in_deltas_marks_the_model_stale_until_the_next_snapshot() {
    let mut app = loaded_app(false);
    assert!(app.model.synced);
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 99,
        at_ms: T0,
        event: Event::RoomClosed {
            code: "WWGV8B".into(),
        },
    }));
    assert!(!app.model.synced);
    app.update(Msg::Server(ServerMessage::Snapshot {
        seq: 120,
        snapshot: Box::new(fixture()),
    }));
    assert!(app.model.synced);
    assert_eq!(app.model.seq, 120);
}

#[test]
fn errors_in_the_log_are_decoded_from_the_catalog() {
    let app = loaded_app(false);
    let errors: Vec<_> = app
        .log
        .iter()
        .filter_map(|e| e.decoded())
        .map(|e| e.qualified())
        .collect();
    assert!(errors.contains(&"pubsub:channel_not_authorized".to_owned()));
    assert!(errors.contains(&"pubsub:4020".to_owned()), "{errors:?}");
}

#[test]
fn the_log_is_bounded() {
    let mut app = loaded_app(false);
    for n in 0..(relaydeck::console::log::LOG_CAPACITY + 50) {
        app.update(Msg::Server(ServerMessage::Delta {
            seq: 15 + n as u64,
            at_ms: T0,
            event: Event::Frame {
                peer: "p1".into(),
                direction: Direction::Out,
                text: "{}".into(),
            },
        }));
    }
    assert_eq!(app.log.len(), relaydeck::console::log::LOG_CAPACITY);
}

#[test]
fn authority_can_be_transferred_and_revoked_after_confirming() {
    let mut app = loaded_app(false);
    app.run_command_line("transfer WWGV8B 93f3d64e");
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("no confirmation")
    };
    assert!(question.contains("from Alice to Bob"), "{question}");
    assert_eq!(
        command,
        Command::TransferAuthority {
            room: "WWGV8B".into(),
            player_id: "93f3d64e".into()
        }
    );
    let effects = app.update(key(KeyCode::Char('y')));
    assert!(matches!(&effects[..], [Effect::Send(_)]));

    app.run_command_line("revoke-authority WWGV8B");
    assert!(matches!(
        &app.mode,
        Mode::Confirm {
            command: Command::RevokeAuthority { .. },
            ..
        }
    ));
    app.update(key(KeyCode::Char('n')));
    assert!(app.run_command_line("transfer WWGV8B nobody").is_empty());
    assert!(app.status.as_ref().unwrap().0.contains("no player"));
}

#[test]
fn the_composer_at_80x24() {
    let mut app = loaded_app(false);
    app.run_command_line("compose channel_not_authorized");
    insta::assert_snapshot!("composer", render(&app, 80, 24));
    app.composer.set_text("{\"type\":");
    insta::assert_snapshot!("composer_invalid_json", render(&app, 80, 24));
}

#[test]
fn the_composer_sends_through_a_probe_then_the_same_probe() {
    let mut app = loaded_app(false);
    app.run_command_line("compose");
    app.composer.set_text(
        r#"[{"type":"subscribe","channel":"demo/a"},{"type":"publish","channel":"demo/a"}]"#,
    );
    let effects = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    let [Effect::Send(first)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert!(matches!(
        &first.command,
        Command::Inject {
            target: relaydeck::protocol::admin::InjectTarget::Probe { .. },
            ..
        }
    ));
    // The second frame waits for the probe's id, then goes through the same probe.
    let opened = relaydeck::protocol::admin::CommandResult {
        id: first.id,
        ok: true,
        message: "probe p9 connected".into(),
        data: Some(json!({"peer": "p9"})),
    };
    let effects = app.update(Msg::Server(ServerMessage::Result(opened)));
    let [Effect::Send(second)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert!(
        matches!(&second.command, Command::Inject { target: relaydeck::protocol::admin::InjectTarget::ExistingProbe { peer }, .. } if peer == "p9")
    );
    assert_eq!(app.composer.watching.as_deref(), Some("p9"));
}

#[test]
fn a_log_line_opens_in_the_composer() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('7')));
    // The newest line is the close; reading back one line reaches the frame p1 sent.
    app.update(key(KeyCode::Char('k')));
    app.update(key(KeyCode::Char('e')));
    assert_eq!(app.view, View::Composer);
    assert_eq!(
        app.composer.target,
        relaydeck::console::composer::Target::Peer("p1".into())
    );
    assert!(app.composer.text().contains("demo/lobby"));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.view, View::Log);
}

#[test]
fn every_command_completes() {
    let mut app = loaded_app(false);
    for (typed, completed) in [
        ("comp", "compose "),
        ("tra", "transfer "),
        ("revoke-a", "revoke-authority "),
        ("fa", "fault "),
        ("rec", "record "),
    ] {
        app.command_line = typed.to_owned();
        app.mode = Mode::Command;
        app.update(key(KeyCode::Tab));
        assert_eq!(app.command_line, completed, "{typed}");
    }
}

/// A window of a table is exactly the matching slice of the whole table, in natural order and
/// when sorted, and a cached sorted order never outlives a delta, a filter or a sort change.
#[test]
fn table_windows_match_the_full_table_and_follow_deltas() {
    let mut app = loaded_app(false);
    let full = app.table(View::Peers).rows;
    let window = app.table_window(View::Peers, 1, 2);
    assert_eq!(window.total, full.len());
    assert_eq!(window.rows, full[1..3]);
    assert!(app.table_window(View::Peers, 50, 10).rows.is_empty());

    let state = app.tables.entry(View::Peers);
    state.sort = Some(7);
    state.descending = true;
    let sorted = app.table(View::Peers).rows;
    assert_eq!(app.table_window(View::Peers, 0, 10).rows, sorted);

    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0 + 5000,
        event: Event::PeerConnected {
            peer: peer("p9", Dialect::Talo, "demo", "Ünïcode", None, 50),
        },
    }));
    let window = app.table_window(View::Peers, 0, 1);
    assert_eq!(window.total, full.len() + 1);
    assert_eq!(window.rows[0].key, "p9");
    assert_eq!(app.selected_key(View::Peers).as_deref(), Some("p9"));

    app.tables.entry(View::Peers).descending = false;
    assert_eq!(
        app.table_window(View::Peers, sorted.len(), 1).rows[0].key,
        "p9"
    );

    // Filters ignore case, for ASCII and non-ASCII text alike.
    app.tables.entry(View::Peers).filter = "ALICE".into();
    let window = app.table_window(View::Peers, 0, 10);
    assert_eq!(window.total, 1);
    assert_eq!(window.rows[0].key, "p2");
    app.tables.entry(View::Peers).filter = "ünï".into();
    assert_eq!(app.table_window(View::Peers, 0, 10).rows[0].key, "p9");
}

#[test]
fn sorting_text_puts_p2_before_p10_and_a_startup_warning_survives_the_connect() {
    use relaydeck::console::model::natural_cmp;
    use std::cmp::Ordering;
    assert_eq!(natural_cmp("p2", "p10"), Ordering::Less);
    assert_eq!(natural_cmp("p10", "p10"), Ordering::Equal);
    assert_eq!(natural_cmp("p010", "p9"), Ordering::Greater);
    assert_eq!(natural_cmp("demo/a", "demo/b"), Ordering::Less);
    assert_eq!(natural_cmp("p1", "p1x"), Ordering::Less);

    let mut app = loaded_app(false);
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0,
        event: Event::PeerConnected {
            peer: peer("p10", Dialect::Pubsub, "demo", "late", None, 0),
        },
    }));
    // Unsorted, the peers view lists ids in natural order too, window by window.
    let window = app.table_window(View::Peers, 3, 2);
    assert_eq!(
        window
            .rows
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["p4", "p10"]
    );
    let state = app.tables.entry(View::Peers);
    state.sort = Some(0);
    let keys: Vec<String> = app
        .table(View::Peers)
        .rows
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, ["p1", "p2", "p3", "p4", "p10"]);

    let mut app = App::new(Keymap::defaults(), false);
    app.set_status(
        "keymap.json line 3: unknown action \"kik\"; using the default keys",
        relaydeck::catalog::Severity::Warning,
    );
    app.update(Msg::Connection(Connection::Connected));
    assert!(app.status.unwrap().0.contains("keymap.json"));
}

#[test]
fn the_log_pauses_while_reading_back_and_follows_live_again() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('7')));
    assert_eq!(app.log_entries(None).len(), 3);
    app.update(key(KeyCode::Char('k')));
    let anchor = app.log.anchor;
    assert!(anchor.is_some());
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0 + 9000,
        event: Event::PeerClosed {
            peer: "p3".into(),
            code: Some(4011),
            reason: "over_message_rate".into(),
        },
    }));
    assert_eq!(
        app.log.anchor, anchor,
        "new entries do not move a paused log"
    );
    let screen = render(&app, 80, 24);
    assert!(screen.contains("PAUSED, 2 newer"), "{screen}");
    assert!(!screen.contains("over_message_rate"), "{screen}");
    app.update(key(KeyCode::Char('G')));
    assert_eq!(app.log.anchor, None);
    assert!(render(&app, 80, 24).contains("over_message_rate"));
    // Scrolling forward past the newest entry follows the live log as well.
    app.update(key(KeyCode::Char('k')));
    app.update(key(KeyCode::Char('j')));
    assert_eq!(app.log.anchor, None);
}

#[test]
fn kicking_from_a_peer_detail_names_the_peer_on_screen() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('2')));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.detail, Some(Detail::Peer("p1".into())));
    // A peer that sorts first arrives: the selected row stays on the peer it was on, one
    // row further down.
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0,
        event: Event::PeerConnected {
            peer: peer("p0", Dialect::Pubsub, "demo", "newcomer", None, 0),
        },
    }));
    app.settle();
    assert_eq!(app.selected_key(View::Peers).as_deref(), Some("p1"));
    assert_eq!(app.table_state(View::Peers).selected, 1);
    app.update(key(KeyCode::Char('x')));
    match &app.mode {
        Mode::Confirm { command, question } => {
            assert!(question.starts_with("Close peer p1 "), "{question}");
            assert_eq!(
                *command,
                Command::Kick {
                    peer: "p1".into(),
                    reason: None
                }
            );
        }
        other => panic!("expected a confirmation, got {other:?}"),
    }
}

#[test]
fn tap_and_fault_ask_first_and_the_tap_key_toggles() {
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('2')));
    assert!(app.update(key(KeyCode::Char('t'))).is_empty());
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("tapping must ask first")
    };
    assert!(question.starts_with("Tap peer p1"), "{question}");
    assert_eq!(
        command,
        Command::Tap {
            peer: "p1".into(),
            on: true
        }
    );
    let effects = app.update(key(KeyCode::Char('y')));
    let [Effect::Send(envelope)] = &effects[..] else {
        panic!("{effects:?}")
    };
    // The console believes the tap once the server confirms it.
    assert!(!app.is_tapped("p1"));
    app.update(Msg::Server(ServerMessage::Result(
        relaydeck::protocol::admin::CommandResult {
            id: envelope.id,
            ok: true,
            message: "tapping frames of p1".into(),
            data: None,
        },
    )));
    assert!(app.is_tapped("p1"));
    app.update(key(KeyCode::Char('t')));
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("untapping must ask first")
    };
    assert!(question.starts_with("Stop tapping peer p1"), "{question}");
    assert_eq!(
        command,
        Command::Tap {
            peer: "p1".into(),
            on: false
        }
    );
    app.update(key(KeyCode::Char('n')));

    assert!(app
        .run_command_line("fault pubsub INTERNAL_ERROR 3")
        .is_empty());
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("arming a fault must ask first")
    };
    assert!(
        question.contains("next 3 requests of every pubsub peer"),
        "{question}"
    );
    assert_eq!(
        command,
        Command::ArmFault {
            target: relaydeck::protocol::admin::FaultTarget::Dialect {
                dialect: Dialect::Pubsub
            },
            // The catalog's own spelling, as the server arms it.
            code: "internal_error".into(),
            count: 3
        }
    );
    app.update(key(KeyCode::Esc));
    // A code the catalog does not know is refused before any question.
    app.run_command_line("fault pubsub NOPE");
    assert_eq!(app.mode, Mode::Normal);
    assert!(
        app.status.as_ref().unwrap().0.contains("not a pubsub code"),
        "{:?}",
        app.status
    );
    app.run_command_line("fault nobody INTERNAL_ERROR");
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.status.as_ref().unwrap().0.contains("neither a dialect"));
    app.run_command_line("fault pubsub INTERNAL_ERROR zero");
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains("not a positive number"));
}

#[test]
fn a_kick_from_the_command_line_carries_its_reason() {
    let mut app = loaded_app(false);
    app.run_command_line("kick p2 spamming the lobby");
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("no confirmation")
    };
    assert!(question.contains("\"spamming the lobby\""), "{question}");
    assert_eq!(
        command,
        Command::Kick {
            peer: "p2".into(),
            reason: Some("spamming the lobby".into())
        }
    );
    app.update(key(KeyCode::Esc));
    app.run_command_line("kick");
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains(":kick <peer> [reason…]"));
}

#[test]
fn the_help_scrolls_to_its_last_line_at_80x24() {
    let mut app = loaded_app(false);
    app.update(Msg::Resize(80, 24));
    app.update(key(KeyCode::Char('?')));
    app.update(key(KeyCode::Char('G')));
    let screen = render(&app, 80, 24);
    assert!(screen.contains(":quit"), "{screen}");
    insta::assert_snapshot!("help_end", screen);
    // Scrolling back up works, and any other key closes the help.
    app.update(key(KeyCode::Char('g')));
    assert_eq!(app.help_scroll, 0);
    app.update(key(KeyCode::Char('x')));
    assert_eq!(app.mode, Mode::Normal);

    let mut readonly = loaded_app(true);
    readonly.update(key(KeyCode::Char('?')));
    readonly.update(key(KeyCode::Char('G')));
    let screen = render(&readonly, 80, 24);
    assert!(!screen.contains(":kick"), "{screen}");
}

#[test]
fn a_readonly_console_completes_no_admin_command() {
    let mut app = loaded_app(true);
    app.command_line = "ki".into();
    assert!(app.completions().is_empty());
    app.command_line = "ta".into();
    assert_eq!(app.completions(), ["target"]);
    let app = loaded_app(false);
    let mut app = app;
    app.command_line = "kick ".into();
    assert_eq!(app.completions(), ["p1", "p2", "p3", "p4"]);
}

#[test]
fn sending_as_an_existing_peer_asks_first() {
    let mut app = loaded_app(false);
    app.run_command_line("compose");
    app.run_command_line("target peer p2");
    app.composer.set_text(r#"{"type":"Ping"}"#);
    let effects = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    assert!(effects.is_empty(), "{effects:?}");
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("no confirmation")
    };
    assert!(
        question.starts_with("Send 1 frame(s) as peer p2"),
        "{question}"
    );
    assert_eq!(
        command,
        Command::Tap {
            peer: "p2".into(),
            on: true
        }
    );
    // Yes sends the tap and then the frame, in that order.
    let effects = app.update(key(KeyCode::Char('y')));
    let commands: Vec<&Command> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(envelope) => Some(&envelope.command),
            _ => None,
        })
        .collect();
    assert!(matches!(
        commands[..],
        [Command::Tap { .. }, Command::Inject { .. }]
    ));
}

// ------------------------------------------------------------------------------------------
// Triage: history, bans, find, paste, ban/export/repro
// ------------------------------------------------------------------------------------------

fn closed_peer(
    peer: PeerInfo,
    closed_at_ms: u64,
    code: Option<u16>,
    reason: &str,
    rooms: &[&str],
    player_id: Option<&str>,
    last_errors: Vec<RecentError>,
) -> HistoryEntry {
    HistoryEntry {
        closed_at_ms,
        closed: Closed::Peer(Box::new(ClosedPeer {
            peer,
            code,
            reason: reason.into(),
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            player_id: player_id.map(str::to_owned),
            last_errors,
            recorded_frames: 12,
            refused_joins: Vec::new(),
        })),
    }
}

/// The loaded console after Bob lost two connections before the one that is live (p3), the
/// Talo peer p5 was kicked, a room closed, and Bob was banned.
fn triage_app() -> App {
    let mut app = loaded_app(false);
    let bob = |id: &str, connected: u64| {
        let mut p = peer(id, Dialect::SignalFish, "demo", "Bob", Some("WWGV8B"), 1);
        p.connected_at_ms = connected;
        p
    };
    let first = bob("p10", T0 - 600_000);
    let second = bob("p12", T0 - 300_000);
    let kicked_talo = peer("p5", Dialect::Talo, "demo", "alice", None, 2);
    let mut room = fixture().rooms[0].clone();
    room.code = "K7Q2PX".into();
    room.players.clear();
    let events = [
        Event::HistoryAdded {
            entry: closed_peer(
                first,
                T0 - 420_000,
                Some(4020),
                "admin_disconnect",
                &["WWGV8B"],
                Some("93f3d64e"),
                vec![RecentError {
                    at_ms: T0 - 421_000,
                    dialect: Dialect::SignalFish,
                    code: "RATE_LIMIT_EXCEEDED".into(),
                    frame: r#"{"type":"Error","data":{"message":"slow down","error_code":"RATE_LIMIT_EXCEEDED"}}"#.into(),
                }],
            ),
        },
        Event::HistoryAdded {
            entry: closed_peer(
                second,
                T0 - 120_000,
                None,
                "",
                &["WWGV8B"],
                Some("93f3d64e"),
                vec![],
            ),
        },
        Event::HistoryAdded {
            entry: HistoryEntry {
                closed_at_ms: T0 - 60_000,
                closed: Closed::Room(Box::new(ClosedRoom {
                    room,
                    reason: "empty".into(),
                })),
            },
        },
        Event::HistoryAdded {
            entry: closed_peer(
                kicked_talo,
                T0 + 2000,
                Some(4020),
                "admin_disconnect",
                &[],
                None,
                vec![],
            ),
        },
        Event::BanAdded {
            ban: BanInfo {
                id: 3,
                target: BanTarget::Identity {
                    app: Some("demo".into()),
                    identity: "Mallory".into(),
                },
                reason: "griefing in WWGV8B".into(),
                by: "admin@127.0.0.1:50300".into(),
                created_at_ms: T0,
                until_ms: T0 + 2 * 3_600_000 + 5000,
            },
        },
        Event::BanAdded {
            ban: BanInfo {
                id: 4,
                target: BanTarget::Address {
                    ip: "203.0.113.7".into(),
                },
                reason: "connection flood".into(),
                by: "admin@127.0.0.1:50300".into(),
                created_at_ms: T0,
                until_ms: T0 + 600_000,
            },
        },
    ];
    for (offset, event) in events.into_iter().enumerate() {
        app.update(Msg::Server(ServerMessage::Delta {
            seq: 15 + offset as u64,
            at_ms: T0 + 3000,
            event,
        }));
    }
    app.status = None;
    app
}

#[test]
fn the_history_and_a_closed_peer_with_its_players_timeline() {
    let mut app = triage_app();
    app.run_command_line("history");
    assert_eq!(app.view, View::History);
    insta::assert_snapshot!("history_view", render(&app, 80, 24));
    // Newest first: p5, the room, p12, p10. Down twice lands on p12, Bob's second life.
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.detail, Some(Detail::History("p12".into())));
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.detail, Some(Detail::History("p10".into())));
    insta::assert_snapshot!("history_detail_timeline", render(&app, 100, 30));
    // The `h` key opens the same view.
    let mut app = triage_app();
    app.update(key(KeyCode::Char('h')));
    assert_eq!(app.view, View::History);
}

#[test]
fn bans_are_listed_and_lifted_after_confirming() {
    let mut app = triage_app();
    app.update(key(KeyCode::Char('b')));
    assert_eq!(app.view, View::Bans);
    insta::assert_snapshot!("bans_view", render(&app, 80, 24));
    assert!(app.update(key(KeyCode::Char('u'))).is_empty());
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("no confirmation")
    };
    assert!(
        question.contains("Lift ban 3 on identity Mallory in app demo"),
        "{question}"
    );
    assert_eq!(command, Command::Unban { ban: 3 });
    let effects = app.update(key(KeyCode::Char('y')));
    assert!(matches!(&effects[..], [Effect::Send(e)] if e.command == Command::Unban { ban: 3 }));
    app.run_command_line("unban 99");
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.status.as_ref().unwrap().0.contains("no ban 99"));
    let mut readonly = triage_app();
    readonly.readonly = true;
    readonly.update(key(KeyCode::Char('b')));
    readonly.update(key(KeyCode::Char('u')));
    assert_eq!(readonly.mode, Mode::Normal);
}

fn node(name: &str, heartbeat: u64, peers: u64, frames: u64, errors: u64) -> NodeInfo {
    NodeInfo {
        node_id: name.into(),
        listen: format!(
            "10.0.0.{}:7878",
            u32::from(name.as_bytes()[name.len() - 1]) - 96
        ),
        started_at_ms: T0 - 3_600_000,
        heartbeat_at_ms: heartbeat,
        peers,
        frames_in: frames / 4,
        frames_out: frames - frames / 4,
        errors,
        redis_ok: true,
        alive: true,
        local: name == "node-a",
    }
}

/// Two heartbeats a second apart give each node its rates; a node whose heartbeat lapsed, and
/// one that lost Redis, stand out.
#[test]
fn the_nodes_view_shows_liveness_and_rates_from_successive_heartbeats() {
    let mut app = loaded_app(false);
    let lists = [
        vec![
            node("node-a", T0, 12, 10_000, 3),
            node("node-b", T0 - 200, 9, 4_000, 0),
            node("node-c", T0 - 300, 4, 1_000, 1),
        ],
        vec![
            node("node-a", T0 + 1000, 13, 12_500, 5),
            node("node-b", T0 + 800, 9, 4_900, 0),
            NodeInfo {
                alive: false,
                ..node("node-c", T0 - 300, 4, 1_000, 1)
            },
            NodeInfo {
                redis_ok: false,
                ..node("node-d", T0 + 900, 2, 100, 0)
            },
        ],
    ];
    for (offset, nodes) in lists.into_iter().enumerate() {
        app.update(Msg::Server(ServerMessage::Delta {
            seq: 15 + offset as u64,
            at_ms: T0 + 1000,
            event: Event::Nodes { nodes },
        }));
    }
    app.run_command_line("nodes");
    assert_eq!(app.view, View::Nodes);
    let rates: Vec<(String, Option<u64>, Option<u64>)> = app
        .model
        .nodes
        .iter()
        .map(|n| (n.info.node_id.clone(), n.frames_per_s, n.errors_per_s))
        .collect();
    assert_eq!(
        rates,
        [
            ("node-a".into(), Some(2_500), Some(2)),
            ("node-b".into(), Some(900), Some(0)),
            ("node-c".into(), None, None),
            ("node-d".into(), None, None),
        ]
    );
    insta::assert_snapshot!("nodes_view", render(&app, 100, 16));
    // The `N` key opens the same view.
    let mut app = loaded_app(false);
    app.update(key(KeyCode::Char('N')));
    assert_eq!(app.view, View::Nodes);
}

#[test]
fn find_searches_live_peers_rooms_and_history_together() {
    let mut app = triage_app();
    app.run_command_line("find BOB");
    assert_eq!(app.view, View::Find);
    let found: Vec<String> = app
        .find
        .hits
        .iter()
        .map(|h| format!("{} {:?}", h.found.label(), h.found))
        .collect();
    assert_eq!(
        found,
        [
            "live Peer(\"p3\")",
            "live Room(\"WWGV8B\")",
            "history History(\"p12\")",
            "history History(\"p10\")"
        ]
    );
    insta::assert_snapshot!("find_results", render(&app, 80, 24));
    // By close code, error code and error name; Enter opens the detail.
    app.run_command_line("find 4020");
    assert_eq!(app.find.hits.len(), 2, "{:?}", app.find.hits);
    app.run_command_line("find rate_limit_exc");
    assert_eq!(app.find.hits.len(), 1);
    app.run_command_line("find k7q2");
    assert_eq!(app.find.hits.len(), 1);
    app.update(key(KeyCode::Enter));
    assert!(matches!(&app.detail, Some(Detail::History(k)) if k.starts_with("K7Q2PX@")));
    app.run_command_line("find 127.0.0.1:50003");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.detail, Some(Detail::Peer("p3".into())));
}

#[test]
fn a_pasted_log_becomes_a_timeline_tied_to_peers() {
    let mut app = triage_app();
    app.run_command_line("paste");
    assert_eq!(app.mode, Mode::Paste);
    app.update(Msg::Paste(
        "[14:01:58.200] <- {\"type\":\"Authenticated\",\"data\":{\"app_name\":\"Demo\"}}\r\n\
         2026-12-01T14:02:03.120Z <- {\"type\":\"RoomJoinFailed\",\"data\":{\"reason\":\"Room is full\",\"error_code\":\"ROOM_FULL\",\"room_code\":\"WWGV8B\"}}\n\
         14:02:09 <- {\"type\":\"Error\",\"data\":{\"message\":\"slow down\",\"error_code\":\"RATE_LIMIT_EXCEEDED\",\"player_id\":\"93f3d64e\"}}\n\
         14:02:11.5 WebSocket closed: CLOSED code=4020 reason='admin_disconnect'\n\
         {\"type\":\"error\",\"code\":\"channel_not_authorized\",\"peerId\":\"peer-ada\"}"
            .into(),
    ));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.view, View::Timeline);
    assert_eq!(app.timeline.events.len(), 4, "{:?}", app.timeline.events);
    insta::assert_snapshot!("paste_timeline", render(&app, 100, 24));
    // Enter opens the first peer the selected event points at.
    app.update(key(KeyCode::Enter));
    assert_eq!(app.detail, Some(Detail::Peer("p2".into())));
    // Hostile pastes do not panic.
    let mut app = triage_app();
    app.run_command_line("paste");
    app.update(Msg::Paste(format!(
        "{}\u{0}\u{feff}[99:99:99] {{\"type\":",
        "{\"a\":".repeat(3000)
    )));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    render(&app, 80, 24);
}

#[test]
fn ban_names_what_it_bans_and_for_how_long() {
    // A closed peer with an identity: its identity, within its app.
    let mut app = triage_app();
    app.run_command_line("history");
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Char('j')));
    assert!(app.run_command_line("ban 2h cheating in ranked").is_empty());
    let Mode::Confirm { question, command } = app.mode.clone() else {
        panic!("no confirmation: {:?}", app.status)
    };
    assert!(
        question.contains("Ban identity Bob in app demo for 2h")
            && question.contains("closed peer p12")
            && question.contains("cheating in ranked")
            && question.contains("1 live peer(s)"),
        "{question}"
    );
    assert_eq!(
        command,
        Command::Ban {
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Bob".into()
            },
            duration_ms: 7_200_000,
            reason: "cheating in ranked".into()
        }
    );
    insta::assert_snapshot!("confirm_ban", render(&app, 80, 24));
    // A live peer without an identity: its IP, port stripped.
    let mut app = triage_app();
    let mut anonymous = peer("p9", Dialect::SignalFish, "demo", "", None, 0);
    anonymous.identity = None;
    anonymous.addr = "203.0.113.9:41000".into();
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 30,
        at_ms: T0 + 4000,
        event: Event::PeerConnected { peer: anonymous },
    }));
    app.detail = Some(Detail::Peer("p9".into()));
    app.view = View::Peers;
    app.run_command_line("ban 10m flood");
    let Mode::Confirm { command, question } = app.mode.clone() else {
        panic!("no confirmation")
    };
    assert!(
        question.contains("address 203.0.113.9 for 10m"),
        "{question}"
    );
    assert!(
        matches!(command, Command::Ban { target: BanTarget::Address { ip }, duration_ms: 600_000, .. } if ip == "203.0.113.9")
    );
    // Bad durations and read-only consoles are refused.
    let mut app = triage_app();
    app.view = View::Peers;
    app.run_command_line("ban soon x");
    assert_eq!(app.mode, Mode::Normal);
    let mut readonly = triage_app();
    readonly.readonly = true;
    readonly.view = View::Peers;
    readonly.run_command_line("ban 1h x");
    assert_eq!(readonly.mode, Mode::Normal);
    assert!(readonly.status.unwrap().0.contains("read-only"));
}

#[test]
fn export_sends_export_and_saves_what_comes_back() {
    let mut app = triage_app();
    app.run_command_line("history");
    app.update(key(KeyCode::Char('G')));
    app.run_command_line("export ../evil");
    assert!(app.status.as_ref().unwrap().0.contains("session name"));
    let effects = app.run_command_line("export bob-first");
    let [Effect::Send(envelope)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(envelope.command, Command::Export { peer: "p10".into() });
    let effects = app.update(Msg::Server(ServerMessage::Result(CommandResult {
        id: envelope.id,
        ok: true,
        message: "exported p10".into(),
        data: Some(json!({"name": "p10", "session": "{\"session\":1}\n", "connections": 1})),
    })));
    assert_eq!(
        effects,
        [Effect::SaveSession {
            name: "bob-first".into(),
            text: "{\"session\":1}\n".into()
        }]
    );
    // A log line naming a peer exports that peer.
    let mut app = triage_app();
    app.view = View::Log;
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 40,
        at_ms: T0 + 5000,
        event: Event::PeerClosed {
            peer: "p4".into(),
            code: Some(1000),
            reason: "bye".into(),
        },
    }));
    let effects = app.run_command_line("export flow-one");
    assert!(
        matches!(&effects[..], [Effect::Send(e)] if e.command == Command::Export { peer: "p4".into() }),
        "{effects:?}"
    );
}

#[test]
fn repro_runs_a_shipped_session_and_the_composer_runs_multi_connection_templates() {
    let mut app = triage_app();
    let effects = app.run_command_line("repro ROOM_FULL");
    let [Effect::RunSession(run)] = &effects[..] else {
        panic!("{effects:?} {:?}", app.status)
    };
    assert_eq!(run.session.header.expect_codes, ["signal-fish:ROOM_FULL"]);
    assert!(app.log.iter().any(|e| matches!(&e.kind, LogKind::Notice { text, .. } if text.contains("running signal-fish ROOM_FULL"))));
    // A file is read by the loop, then run.
    let effects = app.run_command_line("repro sessions/mine.jsonl");
    assert!(
        matches!(&effects[..], [Effect::LoadSession { path, .. }] if path == "sessions/mine.jsonl")
    );
    // Unknown codes are refused without running anything.
    assert!(app.run_command_line("repro NOT_A_CODE").is_empty());
    // The composer sends a template of two connections as its session.
    let mut app = triage_app();
    app.run_command_line("compose ROOM_FULL");
    let effects = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    let [Effect::RunSession(run)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(run.session.header.name, "signal-fish ROOM_FULL");
    // What the session's connections receive shows in the answers pane, after the step that
    // opened the connection, though the frame arrives before the step's report.
    let label = run.label.clone();
    app.update(Msg::Repro(
        label.clone(),
        ReproProgress::Frame(SeenFrame {
            conn: "late".into(),
            local_addr: "127.0.0.1:40000".parse().unwrap(),
            direction: Direction::Out,
            text: r#"{"type":"RoomJoinFailed","data":{"reason":"full","error_code":"ROOM_FULL"}}"#
                .into(),
        }),
    ));
    app.update(Msg::Repro(
        label.clone(),
        ReproProgress::Step(StepReport {
            number: 3,
            description: "connect late".into(),
            outcome: Outcome::Passed(vec![]),
        }),
    ));
    let screen = render(&app, 100, 30);
    let step = screen.find("step 3 ✓ connect late").expect(&screen);
    let refusal = screen.find("RoomJoinFailed").expect(&screen);
    assert!(step < refusal, "{screen}");
    assert!(screen.contains(&format!("Answers to {label}")), "{screen}");
    let order: Vec<bool> = app
        .log
        .iter()
        .rev()
        .take(2)
        .map(|e| matches!(e.kind, LogKind::Notice { .. }))
        .collect();
    assert_eq!(order, [false, true], "the step, then its frame, in the log");
}

/// A long frame, as a player sent it: the log cuts it to a line; Enter shows it whole, `y`
/// copies every byte of it, Esc goes back.
#[test]
fn a_log_entry_opens_whole_and_copies_every_byte() {
    let mut app = loaded_app(false);
    let long = format!(
        r#"{{"type":"publish","channel":"demo/lobby","data":"{}","requestId":"tail-marker"}}"#,
        "x".repeat(300)
    );
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0 + 5000,
        event: Event::Frame {
            peer: "p1".into(),
            direction: Direction::In,
            text: long.clone(),
        },
    }));
    app.update(key(KeyCode::Char('7')));
    assert!(
        !render(&app, 80, 24).contains("tail-marker"),
        "the log cuts it"
    );
    app.update(key(KeyCode::Enter));
    assert!(matches!(app.detail, Some(Detail::Entry { .. })));
    let screen = render(&app, 80, 40);
    assert!(screen.contains("tail-marker"), "{screen}");
    let effects = app.update(key(KeyCode::Char('y')));
    match effects.as_slice() {
        [Effect::Copy { text, .. }] => assert_eq!(*text, long),
        other => panic!("expected a copy, got {other:?}"),
    }
    app.update(key(KeyCode::Esc));
    assert_eq!(app.detail, None);
    assert_eq!(app.view, View::Log);
}

/// `f` on a closed peer asks the server for its recorded frames and shows them, newest
/// selected and whole under the list; up moves to the one before.
#[test]
fn a_closed_peers_recorded_frames_open_and_read_whole() {
    let mut app = triage_app();
    app.update(key(KeyCode::Char('h')));
    // Newest first: p5, the room, p12.
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Char('j')));
    app.update(key(KeyCode::Enter));
    assert!(
        matches!(app.detail, Some(Detail::History(_))),
        "{:?}",
        app.detail
    );
    let effects = app.update(key(KeyCode::Char('f')));
    let id = match effects.as_slice() {
        [Effect::Send(envelope)] => {
            assert_eq!(envelope.command, Command::Frames { peer: "p12".into() });
            envelope.id
        }
        other => panic!("expected the frames command, got {other:?}"),
    };
    app.update(Msg::Server(ServerMessage::Result(CommandResult {
        id,
        ok: true,
        message: "2 frames".into(),
        data: Some(json!({
            "peer": "p12",
            "path": null,
            "frames": [
                {"at_ms": T0, "direction": "in", "text": "{\"type\":\"JoinRoom\",\"data\":{\"player_name\":\"Bob\"}}"},
                {"at_ms": T0 + 10, "direction": "out", "text": "{\"type\":\"RoomJoinFailed\",\"data\":{\"error_code\":\"ROOM_FULL\"}}"}
            ]
        })),
    })));
    assert!(matches!(app.detail, Some(Detail::Frames { .. })));
    let screen = render(&app, 100, 30);
    assert!(screen.contains("Recorded frames of p12 (2)"), "{screen}");
    assert!(screen.contains("\"error_code\": \"ROOM_FULL\""), "{screen}");
    app.update(key(KeyCode::Up));
    let screen = render(&app, 100, 30);
    assert!(screen.contains("\"player_name\": \"Bob\""), "{screen}");
    app.update(key(KeyCode::Esc));
    assert!(matches!(app.detail, Some(Detail::History(_))));
}
