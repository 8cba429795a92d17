//! The whole console, headless: `console::run` on ratatui's `TestBackend` against a real
//! server on 127.0.0.1:0, through the real admin link. Keys go in through a channel; what comes
//! out is checked where it lands: on the screen, at the peers (close codes), at a second admin
//! client (deltas), in the audit log and in the sessions folder.
//!
//! Nothing sleeps for readiness: every wait is a receive (a redraw, a frame, a delta) under a
//! timeout, followed by a look at the state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{recv_close, recv_type, TestServer};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures_util::Stream;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::Terminal;
use relaydeck::catalog::Dialect;
use relaydeck::console::app::App;
use relaydeck::console::keymap::Keymap;
use relaydeck::console::Link;
use relaydeck::protocol::admin::{AppStatus, Event};
use relaydeck::session::replay;
use relaydeck::session::Session;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A `TestBackend` the test can read while the console owns the terminal; every flush (the
/// end of a draw) is announced on a channel.
#[derive(Clone)]
struct Shared {
    backend: Arc<Mutex<TestBackend>>,
    drawn: mpsc::UnboundedSender<()>,
}

impl Shared {
    fn with<T>(&self, body: impl FnOnce(&mut TestBackend) -> T) -> T {
        body(&mut self.backend.lock().unwrap())
    }
}

impl Backend for Shared {
    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.with(|b| b.draw(content))
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.with(|b| b.hide_cursor())
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.with(|b| b.show_cursor())
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.with(|b| b.get_cursor_position())
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let position = position.into();
        self.with(|b| b.set_cursor_position(position))
    }
    fn clear(&mut self) -> io::Result<()> {
        self.with(|b| b.clear())
    }
    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.with(|b| b.clear_region(clear_type))
    }
    fn size(&self) -> io::Result<Size> {
        self.with(|b| b.size())
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.with(|b| b.window_size())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.with(|b| b.flush())?;
        let _ = self.drawn.send(());
        Ok(())
    }
}

struct Console {
    screen: Arc<Mutex<TestBackend>>,
    drawn: mpsc::UnboundedReceiver<()>,
    keys: mpsc::UnboundedSender<io::Result<TermEvent>>,
    task: tokio::task::JoinHandle<anyhow::Result<App>>,
}

fn key_stream(
    keys: mpsc::UnboundedReceiver<io::Result<TermEvent>>,
) -> impl Stream<Item = io::Result<TermEvent>> + Unpin {
    Box::pin(futures_util::stream::unfold(keys, |mut keys| async move {
        keys.recv().await.map(|event| (event, keys))
    }))
}

impl Console {
    /// The console on a `width`×`height` test terminal, linked to `server`'s admin endpoint.
    fn start(server: &TestServer, sessions: &std::path::Path, width: u16, height: u16) -> Console {
        let link = Link::connect(server.url("/admin"), server.token.clone());
        Console::start_with(link, sessions, width, height)
    }

    /// The console on a `width`×`height` test terminal, linked to whatever drives `link`.
    fn start_with(link: Link, sessions: &std::path::Path, width: u16, height: u16) -> Console {
        let screen = Arc::new(Mutex::new(TestBackend::new(width, height)));
        let (drawn_tx, drawn) = mpsc::unbounded_channel();
        let backend = Shared {
            backend: screen.clone(),
            drawn: drawn_tx,
        };
        let (keys, keys_rx) = mpsc::unbounded_channel();
        let sessions = sessions.to_path_buf();
        let task = tokio::spawn(async move {
            let mut terminal = Terminal::new(backend)?;
            let app = App::new(Keymap::defaults(), false);
            relaydeck::console::run(
                &mut terminal,
                app,
                key_stream(keys_rx),
                link,
                Some(sessions),
            )
            .await
        });
        Console {
            screen,
            drawn,
            keys,
            task,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().to_string()
    }

    fn press(&self, code: KeyCode) {
        self.keys
            .send(Ok(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE))))
            .unwrap();
    }

    fn ctrl(&self, c: char) {
        self.keys
            .send(Ok(TermEvent::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::CONTROL,
            ))))
            .unwrap();
    }

    fn type_text(&self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c));
        }
    }

    /// `:` then the line then Enter.
    fn command(&self, line: &str) {
        self.press(KeyCode::Char(':'));
        self.type_text(line);
        self.press(KeyCode::Enter);
    }

    /// Wait, redraw by redraw, until the screen satisfies `wanted`; returns that screen.
    async fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + SCREEN_TIMEOUT;
        loop {
            let text = self.text();
            if wanted(&text) {
                return text;
            }
            match tokio::time::timeout_at(deadline, self.drawn.recv()).await {
                Ok(Some(())) => {}
                Ok(None) => panic!("the console stopped while waiting for {what}:\n{text}"),
                Err(_) => panic!("the screen never showed {what}:\n{text}"),
            }
        }
    }

    async fn wait_for_text(&mut self, needle: &str) -> String {
        let wanted = needle.to_owned();
        self.wait_for(needle, move |screen| screen.contains(&wanted))
            .await
    }

    async fn quit(self) -> App {
        self.press(KeyCode::Char('q'));
        tokio::time::timeout(SCREEN_TIMEOUT, self.task)
            .await
            .expect("the console did not quit")
            .unwrap()
            .unwrap()
    }
}

/// Screens carry ports and peer numbers that vary from run to run.
fn stable(screen: &str) -> String {
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let clock = regex::Regex::new(r"\d\d:\d\d:\d\d").unwrap();
    let pubsub_peer = regex::Regex::new(r"peer-[0-9a-f]{8}").unwrap();
    let text = port.replace_all(screen, "127.0.0.1:PORT");
    let text = pubsub_peer.replace_all(&text, "peer-XXXXXXXX");
    clock.replace_all(&text, "HH:MM:SS").into_owned()
}

#[tokio::test]
async fn keys_in_screens_and_admin_commands_out() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut observer = server.admin().await;
    let mut victim = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut victim, "welcome").await;
    let victim_id = match observer
        .wait_event(|e| matches!(e, Event::PeerConnected { .. }))
        .await
    {
        Event::PeerConnected { peer } => peer.id,
        _ => unreachable!(),
    };

    let mut console = Console::start(&server, sessions.path(), 100, 30);
    console.wait_for_text("1 peers").await;

    // Kick, with a reason, from the command line; nothing happens before the confirmation.
    console.press(KeyCode::Char('2'));
    console.wait_for_text(&format!("{victim_id} ")).await;
    console.command(&format!("kick {victim_id} flooding the lobby"));
    let question = console.wait_for_text("Confirm").await;
    assert!(question.contains("flooding the lobby"), "{question}");
    insta::assert_snapshot!(
        "headless_confirm_kick",
        stable(&question).replace(&victim_id, "pN")
    );
    console.press(KeyCode::Char('y'));
    assert_eq!(
        recv_close(&mut victim).await,
        (4020, "admin_disconnect".to_owned())
    );
    observer
        .wait_event(
            |e| matches!(e, Event::PeerClosed { peer, code: Some(4020), .. } if *peer == victim_id),
        )
        .await;
    console.wait_for_text("0 peers").await;
    let audit = relaydeck::server::persist::read_audit(server.data.path()).unwrap();
    // The outcome, which follows the intent recorded before the kick.
    let kick = audit.iter().rev().find(|r| r.action == "kick").unwrap();
    assert_eq!(kick.target, victim_id);
    assert!(
        kick.result.contains("flooding the lobby"),
        "{}",
        kick.result
    );

    // Suspend an app from the apps view's key, then make it active again.
    console.press(KeyCode::Char('6'));
    console.wait_for_text("suspended-app").await;
    console.press(KeyCode::Char('S'));
    let question = console.wait_for_text("Confirm").await;
    assert!(question.contains("Set app demo suspended"), "{question}");
    console.press(KeyCode::Char('y'));
    observer
        .wait_event(|e| matches!(e, Event::AppStatusChanged { app, status: AppStatus::Suspended, .. } if app == "demo"))
        .await;
    console.command("activate demo");
    console.wait_for_text("Confirm").await;
    console.press(KeyCode::Char('y'));
    observer
        .wait_event(|e| matches!(e, Event::AppStatusChanged { app, status: AppStatus::Active, .. } if app == "demo"))
        .await;

    // Compose and send: the default frame publishes outside the key's channels, through a new
    // probe; the answer comes back decoded.
    console.press(KeyCode::Char('9'));
    console.wait_for_text("Frame → new pubsub probe").await;
    console.ctrl('s');
    observer
        .wait_event(|e| matches!(e, Event::ErrorEmitted { dialect: Dialect::Pubsub, code, .. } if code == "channel_not_authorized"))
        .await;
    let answers = console.wait_for_text("channel_not_authorized").await;
    assert!(answers.contains("Answers to"), "{answers}");

    // Record the exchange, and replay the recording against the same server.
    console.ctrl('o');
    console.type_text("record repro-1");
    console.press(KeyCode::Enter);
    console.wait_for_text("session saved to").await;
    let path = sessions.path().join("repro-1.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let session = Session::parse(&text, "repro-1").unwrap();
    assert_eq!(
        session.header.expect_codes,
        ["pubsub:channel_not_authorized"]
    );
    let target = replay::Target {
        addr: server.addr.to_string(),
        admin_token: Some(server.token.clone()),
    };
    let report = replay::run(&session, &target, &mut |_| {}).await;
    assert!(report.passed(), "{report:?}");

    // Tap toggles: the same key asks to tap, then to stop.
    console.press(KeyCode::Esc);
    let mut watched = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut watched, "welcome").await;
    let local = match watched.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().to_string(),
        _ => unreachable!("the test connects without TLS"),
    };
    let watched_id = match observer
        .wait_event(|e| matches!(e, Event::PeerConnected { peer } if peer.addr == local))
        .await
    {
        Event::PeerConnected { peer } => peer.id,
        _ => unreachable!(),
    };
    // The composer's probe is still open (and tapped from the start); the new peer is listed
    // after it, at the bottom.
    console.press(KeyCode::Char('2'));
    console.wait_for_text(&format!("{watched_id} ")).await;
    console.press(KeyCode::Char('G'));
    console.press(KeyCode::Char('t'));
    let question = console.wait_for_text("Confirm").await;
    assert!(
        question.contains(&format!("Tap peer {watched_id}")),
        "{question}"
    );
    console.press(KeyCode::Char('y'));
    console.wait_for_text("t:untap").await;
    console.press(KeyCode::Char('t'));
    let question = console.wait_for_text("Confirm").await;
    assert!(question.contains("Stop tapping"), "{question}");
    console.press(KeyCode::Char('y'));
    console.wait_for_text("t:tap").await;

    let app = console.quit().await;
    assert!(!app.is_tapped(&watched_id));
    drop(watched);
}

/// A pub/sub peer of the demo app, connected; its id and identity as the server lists it.
async fn pubsub_peer(
    server: &TestServer,
    observer: &mut common::Admin,
) -> (common::Socket, String, String) {
    let mut socket = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut socket, "welcome").await;
    let local = match socket.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().to_string(),
        _ => unreachable!("the test connects without TLS"),
    };
    let peer = match observer
        .wait_event(|e| matches!(e, Event::PeerConnected { peer } if peer.addr == local))
        .await
    {
        Event::PeerConnected { peer } => peer,
        _ => unreachable!(),
    };
    (socket, peer.id, peer.identity.unwrap_or_default())
}

/// A Signal Fish player of the demo app in a room of its own.
async fn signal_fish_player(server: &TestServer, name: &str) -> (common::Socket, Value) {
    let mut socket = server.connect("/v2/ws").await;
    common::send_json(
        &mut socket,
        json!({"type": "Authenticate", "data": {"app_id": "demo", "sdk_version": "1.0.0"}}),
    )
    .await;
    recv_type(&mut socket, "ProtocolInfo").await;
    common::send_json(
        &mut socket,
        json!({"type": "JoinRoom", "data": {"game_name": "demo", "player_name": name, "max_players": 2}}),
    )
    .await;
    let answer = recv_json_any(&mut socket, &["RoomJoined", "RoomJoinFailed"]).await;
    (socket, answer)
}

async fn recv_json_any(socket: &mut common::Socket, kinds: &[&str]) -> Value {
    loop {
        let frame = common::recv_json(socket).await;
        if kinds.iter().any(|k| frame["type"] == *k) {
            return frame;
        }
    }
}

#[tokio::test]
async fn find_shows_a_kicked_peer_in_history_with_its_close_decoded() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut observer = server.admin().await;
    let (mut victim, id, identity) = pubsub_peer(&server, &mut observer).await;
    let mut console = Console::start(&server, sessions.path(), 100, 30);
    console.wait_for_text("1 peers").await;
    console.command(&format!("kick {id} testing triage"));
    console.wait_for_text("Confirm").await;
    console.press(KeyCode::Char('y'));
    assert_eq!(recv_close(&mut victim).await.0, 4020);
    console.wait_for_text("0 peers").await;

    console.command(&format!("find {}", identity.to_uppercase()));
    let screen = console.wait_for_text("│history ").await;
    assert!(
        screen.contains(&format!("{id} pubsub demo {identity}")),
        "{screen}"
    );
    assert!(screen.contains("4020 admin_disconnect"), "{screen}");
    console.press(KeyCode::Enter);
    let detail = console.wait_for_text(&format!("Closed peer {id}")).await;
    assert!(
        detail.contains("pubsub:4020 — admin_disconnect — retry: sometimes"),
        "{detail}"
    );
    assert!(detail.contains("across reconnects (1)"), "{detail}");
    console.quit().await;
}

#[tokio::test]
async fn a_player_refused_a_room_is_found_by_that_room_after_leaving() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut observer = server.admin().await;
    let mut socket = server.connect("/v2/ws").await;
    common::send_json(
        &mut socket,
        json!({"type": "Authenticate", "data": {"app_id": "demo", "sdk_version": "1.0.0"}}),
    )
    .await;
    recv_type(&mut socket, "ProtocolInfo").await;
    common::send_json(
        &mut socket,
        json!({"type": "JoinRoom", "data": {"game_name": "demo", "player_name": "Latecomer", "room_code": "NOPE42"}}),
    )
    .await;
    let refused = recv_type(&mut socket, "RoomJoinFailed").await;
    let code = refused["data"]["error_code"].as_str().unwrap().to_owned();
    common::close_and_drain(&mut socket).await;
    observer
        .wait_event(|e| matches!(e, Event::HistoryAdded { .. }))
        .await;
    let mut console = Console::start(&server, sessions.path(), 100, 30);
    console.wait_for_text("0 peers").await;
    console.command("find NOPE42");
    console.wait_for_text("│history ").await;
    console.press(KeyCode::Enter);
    let detail = console.wait_for_text("Closed peer").await;
    assert!(
        detail.contains(&format!("refused joins: room NOPE42 of demo ({code})")),
        "{detail}"
    );
    assert!(detail.contains("Latecomer"), "{detail}");
    console.quit().await;
}

#[tokio::test]
async fn ban_kicks_the_player_and_refuses_it_again() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut observer = server.admin().await;
    let (mut mallory, joined) = signal_fish_player(&server, "Mallory").await;
    assert_eq!(joined["type"], "RoomJoined", "{joined}");
    observer
        .wait_event(|e| matches!(e, Event::PeerUpdated { peer } if peer.identity.as_deref() == Some("Mallory")))
        .await;
    let mut console = Console::start(&server, sessions.path(), 100, 30);
    console.wait_for_text("1 peers").await;
    console.command("find mallory");
    console.wait_for_text("live ").await;
    console.press(KeyCode::Enter);
    console.wait_for_text("Mallory").await;
    console.command("ban 10m griefing in the lobby");
    let question = console.wait_for_text("Confirm").await;
    assert!(
        question.contains("Ban identity Mallory in app demo for 10m"),
        "{question}"
    );
    console.press(KeyCode::Char('y'));
    assert_eq!(recv_close(&mut mallory).await.0, 4020);
    observer
        .wait_event(
            |e| matches!(e, Event::BanAdded { ban } if ban.reason == "griefing in the lobby"),
        )
        .await;
    console.command("bans");
    console.wait_for_text("identity Mallory in app demo").await;

    let (_again, refused) = signal_fish_player(&server, "Mallory").await;
    assert_eq!(refused["type"], "RoomJoinFailed", "{refused}");
    assert_eq!(refused["data"]["error_code"], "BANNED", "{refused}");

    // Lifting it from the bans view lets the player in again.
    console.press(KeyCode::Char('u'));
    console.wait_for_text("Lift ban").await;
    console.press(KeyCode::Char('y'));
    observer
        .wait_event(|e| matches!(e, Event::BanLifted { .. }))
        .await;
    let (_back, joined) = signal_fish_player(&server, "Mallory").await;
    assert_eq!(joined["type"], "RoomJoined", "{joined}");
    console.quit().await;
}

#[tokio::test]
async fn export_writes_a_session_that_replays_green() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut observer = server.admin().await;
    let (mut victim, id, identity) = pubsub_peer(&server, &mut observer).await;
    common::send_json(
        &mut victim,
        json!({"type": "publish", "channel": "other-app/room-1", "data": 1, "requestId": "pub-2"}),
    )
    .await;
    recv_type(&mut victim, "error").await;
    let mut console = Console::start(&server, sessions.path(), 100, 30);
    console.wait_for_text("1 peers").await;
    console.command(&format!("kick {id}"));
    console.wait_for_text("Confirm").await;
    console.press(KeyCode::Char('y'));
    assert_eq!(recv_close(&mut victim).await.0, 4020);
    // The close reaches the console as a delta of its own; find once it has.
    console.wait_for_text("0 peers").await;
    console.command(&format!("find {identity}"));
    console.wait_for_text("│history ").await;
    console.command("export kicked-peer");
    let screen = console.wait_for_text("session saved to").await;
    assert!(screen.contains("relaydeck replay"), "{screen}");
    let path = sessions.path().join("kicked-peer.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let session = Session::parse(&text, "kicked-peer").unwrap();
    let target = replay::Target {
        addr: server.addr.to_string(),
        admin_token: Some(server.token.clone()),
    };
    let report = replay::run(&session, &target, &mut |_| {}).await;
    assert!(report.passed(), "{report:#?}\n{text}");
    // The same name again is refused rather than written over.
    console.command("export kicked-peer");
    console.wait_for_text("already exists").await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    console.quit().await;
}

#[tokio::test]
async fn repro_room_full_shows_it_decoded_in_the_log() {
    let server = TestServer::demo().await;
    let sessions = tempfile::tempdir().unwrap();
    let mut console = Console::start(&server, sessions.path(), 120, 40);
    console.wait_for_text("0 peers").await;
    console.press(KeyCode::Char('7'));
    console.command("repro ROOM_FULL");
    let screen = console
        .wait_for("ROOM_FULL decoded and the session passed", |s| {
            s.contains("✖ ROOM_FULL") && s.contains("Room full — retry") && s.contains("passed")
        })
        .await;
    assert!(screen.contains("step 10 ✓ expect b"), "{screen}");
    // Its frames are in the log too, under the peers the server listed.
    assert!(
        screen.contains("→ {\"data\":{\"game_name\":\"demo\""),
        "{screen}"
    );
    console.quit().await;
}

/// A closed Signal Fish peer refused with APP_ID_SUSPENDED, as a suspended app's clients
/// leave them in the history once a second each.
fn suspended_close(n: u64) -> relaydeck::protocol::admin::HistoryEntry {
    use relaydeck::protocol::admin::{ClosedPeer, HistoryEntry, PeerInfo, RecentError};
    HistoryEntry {
        closed_at_ms: 1_000_000 + n,
        closed: relaydeck::protocol::admin::Closed::Peer(Box::new(ClosedPeer {
            peer: PeerInfo {
                id: format!("p{n}"),
                dialect: Dialect::SignalFish,
                app: Some("demo".into()),
                identity: None,
                addr: format!("127.0.0.1:{}", 20_000 + n % 40_000),
                connected_at_ms: 1_000_000 + n,
                room: None,
                probe: false,
                frames_in: 1,
                frames_out: 1,
                errors: 1,
                frames_dropped: 0,
                round_trip_us: None,
                node: None,
            },
            code: Some(1008),
            reason: String::new(),
            rooms: Vec::new(),
            player_id: None,
            last_errors: vec![RecentError {
                at_ms: 1_000_000 + n,
                dialect: Dialect::SignalFish,
                code: "APP_ID_SUSPENDED".into(),
                frame: "{\"type\":\"Error\"}".into(),
            }],
            recorded_frames: 2,
            refused_joins: Vec::new(),
        })),
    }
}

/// Opening History while closes flood in once froze the console for good: every row of every
/// rebuild scanned the whole history, and every delta rebuilt. With a full history (2,000) and
/// 10,000 deltas a second, `h`, `2` and `q` must each still be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_closes_never_stops_the_console_answering_keys() {
    use relaydeck::console::app::{Connection, Msg};
    use relaydeck::protocol::admin::{ServerMessage, Snapshot};

    let (server, incoming) = mpsc::unbounded_channel();
    let (commands, _commands) = mpsc::unbounded_channel();
    let sessions = tempfile::tempdir().unwrap();
    let mut console = Console::start_with(
        Link::from_channels(incoming, commands),
        sessions.path(),
        120,
        30,
    );
    server.send(Msg::Connection(Connection::Connected)).unwrap();
    let history: Vec<_> = (0..2_000).map(suspended_close).collect();
    server
        .send(Msg::Server(ServerMessage::Snapshot {
            seq: 0,
            snapshot: Box::new(Snapshot {
                history,
                ..Snapshot::default()
            }),
        }))
        .unwrap();
    console.wait_for_text("Overview").await;

    // 10 deltas a millisecond, for at most 60 s: a close and its history entry, an error.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let flood = tokio::spawn(async move {
        let mut every_ms = tokio::time::interval(Duration::from_millis(1));
        let mut seq = 0u64;
        for tick in 0..60_000u64 {
            every_ms.tick().await;
            if stopped.try_recv().is_ok() {
                break;
            }
            for k in 0..10 {
                let n = 2_000 + tick * 10 + k;
                let event = match k % 2 {
                    0 => Event::HistoryAdded {
                        entry: suspended_close(n),
                    },
                    _ => Event::ErrorEmitted {
                        peer: Some(format!("p{n}")),
                        dialect: Dialect::SignalFish,
                        code: "APP_ID_SUSPENDED".into(),
                        delivery: relaydeck::catalog::Delivery::Frame,
                        request_id: None,
                        frame: "{\"type\":\"Error\"}".into(),
                    },
                };
                seq += 1;
                let delta = ServerMessage::Delta {
                    seq,
                    at_ms: 1_000_000 + n,
                    event,
                };
                if server.send(Msg::Server(delta)).is_err() {
                    return seq;
                }
            }
        }
        seq
    });

    console.press(KeyCode::Char('h'));
    console
        .wait_for("the history table", |s| {
            s.contains("CLOSED") && s.contains("APP_ID_SUSPENDED")
        })
        .await;
    console.press(KeyCode::Char('2'));
    console
        .wait_for("the peers table", |s| {
            s.contains("IDENTITY") && !s.contains("CLOSED")
        })
        .await;
    console.quit().await;
    let _ = stop.send(());
    let sent = flood.await.unwrap();
    assert!(sent > 0, "the flood never started");
}
