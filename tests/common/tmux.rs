//! A private tmux server for the tests that drive the real binary in a real terminal: its own
//! socket, one session named `deck`, killed when the test ends however it ends.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    /// Join lines the terminal wrapped when reading the screen (for long sentences printed
    /// by a command, not for the console, which draws to the width).
    join_wrapped: bool,
}

impl Tmux {
    /// A tmux server on its own socket named after `name` and this process; fails the test
    /// with how to fix it when tmux cannot run.
    pub fn new(name: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "this test drives the real binary inside tmux, and tmux could not be run; install \
             it (bash scripts/test.sh does)"
        );
        Tmux {
            socket: format!("relaydeck-{name}-{}", std::process::id()),
            join_wrapped: false,
        }
    }

    /// The same, reading the screen with wrapped lines joined.
    pub fn joining_wrapped(name: &str) -> Tmux {
        let mut tmux = Tmux::new(name);
        tmux.join_wrapped = true;
        tmux
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    pub fn capture(&self) -> String {
        let args: &[&str] = if self.join_wrapped {
            &["capture-pane", "-p", "-J", "-t", "deck"]
        } else {
            &["capture-pane", "-p", "-t", "deck"]
        };
        String::from_utf8_lossy(&self.run(args).stdout).into_owned()
    }

    /// The screen with its attributes, as the escape sequences tmux writes for them.
    pub fn capture_escaped(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-e", "-t", "deck"]).stdout)
            .into_owned()
    }

    /// The title programs in the pane have set (OSC 0 and 2 change it).
    pub fn title(&self) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["display-message", "-p", "-t", "deck", "#{pane_title}"])
                .stdout,
        )
        .trim_end()
        .to_owned()
    }

    pub fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "deck", keys]);
    }

    /// Type `text` as it is, spaces included, with no key names looked up in it.
    pub fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", "deck", "-l", text]);
    }

    /// Poll the screen until `ready` holds. Polling a terminal is the one way to see what it
    /// shows; the loop is bounded by `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
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
