//! The real binary in a real terminal: `relaydeck` (embedded server, demo traffic) inside
//! tmux; navigate to the peers view, kick a demo peer after confirming, see it disappear.
//!
//! Run alone with: `cargo test --test e2e_tmux -- --nocapture`. Needs tmux installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server (its own socket), killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "deck"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "deck", keys]);
    }

    /// Type `text` as it is, spaces included, with no key names looked up in it.
    fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", "deck", "-l", text]);
    }

    /// Poll the screen until `ready` holds. Polling a terminal is the one way to see what it
    /// shows; the loop is bounded by `limit`.
    fn wait_for(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

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
    let tmux = Tmux {
        socket: format!("relaydeck-e2e-{}", std::process::id()),
    };
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
    let confirm = tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Confirm")
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
        |s| !s.contains("Confirm") && !table_has_peer(s, &victim),
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
    let tmux = Tmux {
        socket: format!("relaydeck-e2e-triage-{}", std::process::id()),
    };
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
    let found = tmux.wait_for("the find results", Duration::from_secs(10), |s| {
        s.contains("Find \"")
    });
    assert!(
        found
            .lines()
            .any(|l| l.contains("history") && l.contains(&format!(" {victim} pubsub "))),
        "{found}"
    );
    tmux.keys("Enter");
    let detail = tmux.wait_for("the closed peer", Duration::from_secs(10), |s| {
        s.contains(&format!("Closed peer {victim}"))
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
