//! The console's screens, drawn to ratatui's TestBackend and compared with reviewed snapshots,
//! and its update logic driven directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use relaydeck::catalog::{Delivery, Dialect};
use relaydeck::console::app::{App, Connection, Detail, Effect, Mode, Msg, View};
use relaydeck::console::keymap::Keymap;
use relaydeck::console::ui;
use relaydeck::protocol::admin::{
    AppInfo, AppStatus, ChannelInfo, Command, Direction, Event, KeyInfo, PeerInfo, RoomInfo,
    RoomMember, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};
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
    // A peer that sorts first arrives, so the table's selected row is now another peer.
    app.update(Msg::Server(ServerMessage::Delta {
        seq: 15,
        at_ms: T0,
        event: Event::PeerConnected {
            peer: peer("p0", Dialect::Pubsub, "demo", "newcomer", None, 0),
        },
    }));
    assert_eq!(app.selected_key(View::Peers).as_deref(), Some("p0"));
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
            code: "INTERNAL_ERROR".into(),
            count: 3
        }
    );
    app.update(key(KeyCode::Esc));
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
