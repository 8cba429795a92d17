//! The real binary in a real terminal: `relaydeck` (embedded server, demo traffic) inside
//! tmux; navigate to the peers view, kick a demo peer after confirming, see it disappear.
//!
//! Run alone with: `cargo test --test e2e_tmux -- --nocapture`. Needs tmux installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{
    close_and_drain, recv_json, send_json, send_text, Socket, TestServer, RECEIVE_TIMEOUT,
};
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{Command as AdminCommand, Event};
use serde_json::{json, Value};

/// The id in the first data row of the peers table.
fn first_peer(screen: &str) -> Option<String> {
    let mut lines = screen
        .lines()
        .skip_while(|l| !l.contains("ID") || !l.contains("DIALECT"));
    lines.next()?;
    let row = lines.next()?;
    let id = row.trim_start_matches('│').split_whitespace().next()?;
    (id.starts_with('p') && id[1..].chars().all(|c| c.is_ascii_digit())).then(|| id.to_owned())
}

fn table_has_peer(screen: &str, id: &str) -> bool {
    screen
        .lines()
        .any(|l| l.trim_start_matches('│').split_whitespace().next() == Some(id))
}

#[test]
fn kick_a_demo_peer_from_the_peers_view() {
    // A missing tmux fails rather than skips: a skipped end-to-end test reads as a pass.
    let version = Command::new("tmux").arg("-V").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "this test drives the real binary inside tmux, and tmux could not be run ({}); install it (apt-get install tmux, brew install tmux) — .ci/run does",
        match &version {
            Ok(output) => format!("exit status {}", output.status),
            Err(error) => error.to_string(),
        }
    );
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("e2e");
    let command = format!(
        "env HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data RELAYDECK_DATA_DIR={home}/data TERM=xterm-256color {binary}",
        home = home.path().display(),
        binary = env!("CARGO_BIN_EXE_relaydeck"),
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "deck",
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    tmux.wait_for(
        "the overview with demo peers",
        Duration::from_secs(30),
        |s| s.contains("pub/sub relay") && s.contains("peers ·") && !s.contains(" 0 peers"),
    );
    // Demo peers come and go on their own; the Flow client stays for a minute, so it is the
    // one peer certain to still be there when the kick lands.
    tmux.keys("2");
    tmux.keys("/flow");
    tmux.keys("Enter");
    let screen = tmux.wait_for(
        "the Flow peer in the peers view",
        Duration::from_secs(20),
        |s| s.contains("Peers (") && s.contains("/flow") && first_peer(s).is_some(),
    );
    let victim = first_peer(&screen).unwrap();

    tmux.keys("x");
    // What is asserted on a capture is also waited for: a capture can land while the console
    // is still writing its frame.
    let confirm = tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Confirm") && s.contains(&format!("Close peer {victim}"))
    });
    assert!(
        confirm.contains(&format!("Close peer {victim}")),
        "{confirm}"
    );
    assert!(
        confirm.contains("4020 admin_disconnect") || confirm.contains("admin_disconnect?"),
        "{confirm}"
    );

    tmux.keys("y");
    let after = tmux.wait_for(
        "the kicked peer to disappear",
        Duration::from_secs(10),
        |s| {
            !s.contains("Confirm")
                && !table_has_peer(s, &victim)
                && s.contains(&format!("closing {victim}"))
        },
    );
    assert!(
        after.contains(&format!("closing {victim}")),
        "the result is shown:\n{after}"
    );

    tmux.keys("q");
    let start = Instant::now();
    while tmux.run(&["has-session", "-t", "deck"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the console did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Triage end to end: kick a demo peer, find it in the history with its close decoded, export
/// it as a session, and replay the export with the real binary.
#[test]
fn a_kicked_peer_is_found_in_history_exported_and_replayed_green() {
    let version = Command::new("tmux").arg("-V").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "this test drives the real binary inside tmux; install tmux (.ci/run does)"
    );
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("e2e-triage");
    let env = format!(
        "env HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data RELAYDECK_DATA_DIR={home}/data TERM=xterm-256color",
        home = home.path().display(),
    );
    let command = format!("{env} {}", env!("CARGO_BIN_EXE_relaydeck"));
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "deck",
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    tmux.wait_for(
        "the overview with demo peers",
        Duration::from_secs(30),
        |s| s.contains("pub/sub relay") && s.contains("peers ·") && !s.contains(" 0 peers"),
    );
    // A pub/sub chatter: its sessions last half a minute or more, and its key travels in
    // the query string, so the export connects as it did. (A Flow stream authenticates with
    // a header the flight recorder does not keep.)
    tmux.keys("2");
    tmux.keys("/pubsub");
    tmux.keys("Enter");
    let screen = tmux.wait_for(
        "a pub/sub peer in the peers view",
        Duration::from_secs(20),
        |s| s.contains("Peers (") && s.contains("/pubsub") && first_peer(s).is_some(),
    );
    let victim = first_peer(&screen).unwrap();
    tmux.keys("x");
    tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Confirm")
    });
    tmux.keys("y");
    tmux.wait_for(
        "the kicked peer to disappear",
        Duration::from_secs(10),
        |s| !s.contains("Confirm") && !table_has_peer(s, &victim),
    );

    // The whole id matched comes first, before live peers whose ids merely contain it.
    tmux.keys(":");
    tmux.literal(&format!("find {victim}"));
    tmux.keys("Enter");
    let in_history = |screen: &str| {
        screen
            .lines()
            .any(|l| l.contains("history") && l.contains(&format!(" {victim} pubsub ")))
    };
    let found = tmux.wait_for("the find results", Duration::from_secs(10), |s| {
        s.contains("Find \"") && in_history(s)
    });
    assert!(in_history(&found), "{found}");
    tmux.keys("Enter");
    let detail = tmux.wait_for("the closed peer", Duration::from_secs(10), |s| {
        s.contains(&format!("Closed peer {victim}")) && s.contains("admin_disconnect — retry:")
    });
    assert!(detail.contains("Close 4020 admin_disconnect"), "{detail}");
    assert!(detail.contains("admin_disconnect — retry:"), "{detail}");

    tmux.keys(":");
    tmux.literal("export e2e-kicked");
    tmux.keys("Enter");
    tmux.wait_for("the export", Duration::from_secs(10), |s| {
        s.contains("session saved to")
    });
    let path = home.path().join("data/sessions/e2e-kicked.jsonl");
    assert!(path.exists(), "no {}", path.display());

    tmux.keys("q");
    let start = Instant::now();
    while tmux.run(&["has-session", "-t", "deck"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the console did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let replay = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .env("HOME", home.path())
        .env("RELAYDECK_DATA_DIR", home.path().join("data"))
        .arg("replay")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}\n{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr),
        std::fs::read_to_string(&path).unwrap()
    );
    assert!(replay.status.success(), "{text}");
}

/// What a player may choose as a name: set the terminal's title, colour what follows, clear
/// the screen, and reverse the text after it.
const TITLE_SEQUENCE: &str = "\u{1b}]2;PWNED-TITLE\u{7}\u{1b}[31mRED\u{1b}[0m";

/// A Talo socket identified as `identifier` through the HTTP API, as any game client can.
async fn talo_identified(server: &TestServer, identifier: &str) -> Socket {
    let client = reqwest::Client::new();
    let ticket: Value = tokio::time::timeout(RECEIVE_TIMEOUT, async {
        client
            .post(server.http("/v1/socket-tickets"))
            .bearer_auth("talo_demo_full")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
    .await
    .expect("a socket ticket before the timeout");
    let identity: Value = tokio::time::timeout(RECEIVE_TIMEOUT, async {
        client
            .get(
                reqwest::Url::parse_with_params(
                    &server.http("/v1/players/identify"),
                    [("service", "username"), ("identifier", identifier)],
                )
                .unwrap(),
            )
            .bearer_auth("talo_demo_full")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
    .await
    .expect("an identity before the timeout");
    assert!(
        identity["alias"]["id"].is_number() || identity["alias"]["id"].is_string(),
        "{identity}"
    );
    let ticket = ticket["ticket"].as_str().unwrap();
    let mut socket = server.connect(&format!("/?ticket={ticket}")).await;
    assert_eq!(recv_json(&mut socket).await["res"], "v1.connected");
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": {
            "playerAliasId": identity["alias"]["id"],
            "socketToken": identity["socketToken"],
        }}),
    )
    .await;
    loop {
        let frame = recv_json(&mut socket).await;
        if frame["res"] == "v1.players.identify.success" {
            return socket;
        }
        assert_ne!(frame["res"], "v1.error", "{frame}");
    }
}

/// The console's screen shows only what it drew: the title is what it was, the client's
/// sequences are on screen as text (so nothing obeyed them), no control or bidi character
/// reached a cell, every escape sequence in the pane is an attribute (SGR) tmux reports, and
/// the tab bar and key hints are still on the first and last rows (nothing moved the cursor
/// or cleared the screen).
fn assert_drawn_as_the_console_drew_it(tmux: &Tmux, title: &str, view: &str) {
    let now = tmux.title();
    assert_eq!(now, title, "the pane title changed on {view}");
    let screen = tmux.capture();
    let hidden: Vec<char> = screen
        .chars()
        .filter(|c| *c != '\n' && relaydeck::text::is_hidden(*c))
        .collect();
    assert!(hidden.is_empty(), "{view} holds {hidden:?}:\n{screen}");
    for (at, _) in screen.match_indices("PWNED") {
        assert!(
            screen[..at].ends_with("]2;") || screen[..at].ends_with("\\u{9b}]2;"),
            "PWNED on {view} without the sequence before it being shown:\n{screen}"
        );
    }
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("1 Overview 2 Peers")),
        "the tab bar is gone on {view}:\n{screen}"
    );
    assert!(
        lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.contains("help")),
        "the key hints are gone on {view}:\n{screen}"
    );
    let escaped = tmux.capture_escaped();
    let mut rest = escaped.as_str();
    while let Some(at) = rest.find('\u{1b}') {
        rest = &rest[at + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':' || c == '['))
            .unwrap_or(rest.len());
        assert!(
            rest.starts_with('[') && rest[end..].starts_with('m'),
            "an escape sequence other than SGR on {view}: {:?}",
            &rest[..rest.len().min(24)]
        );
    }
}

/// The attack, end to end: with the console watching a real server in tmux, a Talo
/// player identifies with a title sequence, another leaves one in the history, a Signal Fish
/// player sends it as its room code and player name (raw, and inside valid JSON), and a
/// frame echoes C1 and bidi controls back. The Overview, Peers, Rooms, Log and History views
/// and the player's detail leave the terminal's title as it was and its screen as drawn.
#[test]
fn hostile_names_and_frames_leave_the_terminal_as_the_console_drew_it() {
    let version = Command::new("tmux").arg("-V").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "this test drives the real binary inside tmux; install tmux (.ci/run does)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(TestServer::demo());
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("e2e-escapes");
    let command = format!(
        "env HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data RELAYDECK_DATA_DIR={home}/data RELAYDECK_ADMIN_TOKEN={token} TERM=xterm-256color {binary} connect ws://{addr}",
        home = home.path().display(),
        token = server.token,
        binary = env!("CARGO_BIN_EXE_relaydeck"),
        addr = server.addr,
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "deck",
        "-x",
        "200",
        "-y",
        "50",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    tmux.wait_for("the console connected", Duration::from_secs(30), |s| {
        s.contains("peers ·")
    });
    let title = tmux.title();
    assert!(!title.contains("PWNED"), "{title}");

    let eve = format!("Eve{TITLE_SEQUENCE}");
    let mallory = format!("Mallory{TITLE_SEQUENCE}\u{202e}");
    // The clients stay connected (and the runtime serving them alive) until the end.
    let _clients = runtime.block_on(async {
        let mut admin = server.admin().await;
        let mut eve_socket = talo_identified(&server, &eve).await;
        let mut gone = talo_identified(&server, &mallory).await;
        close_and_drain(&mut gone).await;

        let mut fish = server.connect("/v3/ws").await;
        send_json(
            &mut fish,
            json!({"type": "Authenticate", "data": {"app_id": "demo", "sdk_version": "1.0.0"}}),
        )
        .await;
        assert_eq!(recv_json(&mut fish).await["type"], "Authenticated");
        let Event::PeerConnected { peer } = admin
            .wait_event(|e| matches!(e, Event::PeerConnected { peer } if peer.dialect == Dialect::SignalFish))
            .await
        else {
            unreachable!("wait_event returns what matched")
        };
        let tapped = admin
            .command(AdminCommand::Tap {
                peer: peer.id.clone(),
                on: true,
            })
            .await;
        assert!(tapped.ok, "{tapped:?}");
        // As raw text, the control characters unescaped (not JSON any more), then as JSON.
        send_text(
            &mut fish,
            &format!(
                "{{\"type\":\"JoinRoom\",\"data\":{{\"player_name\":\"Fish{TITLE_SEQUENCE}\",\"room_code\":\"{TITLE_SEQUENCE}\",\"game_name\":\"demo\"}}}}"
            ),
        )
        .await;
        send_json(
            &mut fish,
            json!({"type": "JoinRoom", "data": {
                "player_name": format!("Fish\u{9b}2J\u{202e}{TITLE_SEQUENCE}"),
                "room_code": format!("\u{2066}{TITLE_SEQUENCE}"),
                "game_name": "demo",
            }}),
        )
        .await;
        // A request name the server echoes in its error: C1 controls and bidi go out as
        // they are in JSON text.
        send_json(
            &mut eve_socket,
            json!({"req": "v1.\u{9b}]2;PWNED-C1\u{9c}\u{202e}", "data": {}}),
        )
        .await;
        (admin, eve_socket, fish)
    });

    tmux.keys("1");
    tmux.wait_for("the overview", Duration::from_secs(10), |s| {
        s.contains("Top error codes")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "Overview");

    tmux.keys("2");
    let peers = tmux.wait_for("Eve in the peers view", Duration::from_secs(10), |s| {
        s.contains("Peers (") && s.contains("Eve\\u{1b}]2;")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "Peers");
    assert!(!peers.contains("Mallory"), "{peers}");

    tmux.keys("3");
    tmux.wait_for("the rooms view", Duration::from_secs(10), |s| {
        s.contains("Rooms (")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "Rooms");

    tmux.keys("7");
    let log = tmux.wait_for(
        "the hostile frames in the log",
        Duration::from_secs(10),
        // Every frame sent above, the echoed C1 control last: a capture can land while the
        // console is still writing a frame, so the screen is only judged once it holds them all.
        |s| {
            s.contains("Live log")
                && s.contains("Fish\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED")
                && s.contains("\\u{9b}")
        },
    );
    assert_drawn_as_the_console_drew_it(&tmux, &title, "Log");
    assert!(
        log.contains("\\u{9b}"),
        "the echoed C1 control is shown:\n{log}"
    );

    tmux.keys("h");
    tmux.wait_for("Mallory in the history", Duration::from_secs(10), |s| {
        s.contains("History (") && s.contains("Mallory")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "History");
    tmux.keys("Enter");
    let closed = tmux.wait_for("Mallory's closed peer", Duration::from_secs(10), |s| {
        s.contains("Closed peer")
            && s.contains("Mallory\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED\\u{1b}[0m\\u{202e}")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "a closed peer");
    assert!(
        closed.contains("Mallory\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED\\u{1b}[0m\\u{202e}"),
        "{closed}"
    );
    // Esc alone, seen to have landed: a key right behind it would read as Alt plus that key.
    tmux.keys("Escape");
    tmux.wait_for("the history again", Duration::from_secs(10), |s| {
        s.contains("History (") && !s.contains("Closed peer")
    });

    tmux.keys("2");
    tmux.keys("/Eve");
    tmux.keys("Enter");
    tmux.wait_for(
        "Eve alone in the peers view",
        Duration::from_secs(10),
        |s| s.contains("Peers (1)") && s.contains("/Eve"),
    );
    tmux.keys("Enter");
    let detail = tmux.wait_for("Eve's detail", Duration::from_secs(10), |s| {
        s.contains("Frames and errors")
            && s.contains("Eve\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED\\u{1b}[0m")
    });
    assert_drawn_as_the_console_drew_it(&tmux, &title, "the peer's detail");
    assert!(
        detail.contains("Eve\\u{1b}]2;PWNED-TITLE\\u{7}\\u{1b}[31mRED\\u{1b}[0m"),
        "the identity is shown whole, escaped:\n{detail}"
    );

    tmux.keys("q");
    let start = Instant::now();
    while tmux.run(&["has-session", "-t", "deck"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the console did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
