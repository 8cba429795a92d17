//! `relaydeck connect` follows the catalog: a server never reached, or a refused token, ends
//! it within seconds with a sentence and a non-zero exit; a token stored by `serve` is found
//! without being given; quitting while the link is down does not exit 0; without a terminal
//! it says so. The terminal cases run the real binary inside tmux.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{TestServer, RECEIVE_TIMEOUT};
use relaydeck::console::app::{Connection, Msg};
use relaydeck::console::net::{reach, TokenSource};

fn source(token: &str) -> Vec<TokenSource> {
    vec![TokenSource {
        from: "the token under test".into(),
        token: token.into(),
    }]
}

#[tokio::test]
async fn a_server_never_reached_fails_at_once_with_what_was_tried() {
    let started = Instant::now();
    let error = reach("ws://127.0.0.1:1/admin", source("t"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(error.contains("could not reach the server"), "{error}");
    assert!(error.contains("127.0.0.1:1"), "{error}");
}

#[tokio::test]
async fn a_refused_token_names_the_token_and_where_to_get_the_right_one() {
    let server = TestServer::demo().await;
    let error = reach(&server.url("/admin"), source("wrong"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("refused the admin token (HTTP 401)"),
        "{error}"
    );
    assert!(error.contains("admin-token"), "{error}");
    assert!(error.contains("the token under test"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the token itself is never printed: {error}"
    );
    // The first token that works is used.
    let tokens = vec![
        TokenSource {
            from: "a stale file".into(),
            token: "stale".into(),
        },
        TokenSource {
            from: "the right file".into(),
            token: server.token.clone(),
        },
    ];
    let (client, token) = reach(&server.url("/admin"), tokens).await.unwrap();
    assert_eq!(token, server.token);
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_link_stops_on_a_refused_token_instead_of_retrying() {
    let server = TestServer::demo().await;
    let mut link = relaydeck::console::Link::connect(server.url("/admin"), "wrong".into());
    let mut fatal = link.fatal().unwrap();
    tokio::time::timeout(RECEIVE_TIMEOUT, fatal.wait_for(Option::is_some))
        .await
        .expect("the link gave up")
        .unwrap();
    match tokio::time::timeout(RECEIVE_TIMEOUT, link.incoming.recv()).await {
        Ok(Some(Msg::Connection(Connection::Lost { error, .. }))) => {
            assert!(error.contains("not retrying"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing further: no retry follows.
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(300), link.incoming.recv()).await,
        Ok(None) | Err(_)
    ));
    server.stop().await;
}

#[test]
fn without_a_terminal_connect_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["connect", "ws://127.0.0.1:1", "--admin-token", "t"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
}

#[test]
fn completions_are_printed_for_a_shell() {
    let output = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("_relaydeck()"), "{script}");
    assert!(script.contains("connect"));
}

/// Run `args` of the binary in a pane that prints its exit status and stays open.
fn start(tmux: &Tmux, home: &std::path::Path, args: &str) {
    let command = format!(
        "env -u RELAYDECK_ADMIN_TOKEN -u RELAYDECK_CA_FILE HOME={home} XDG_DATA_HOME={home}/data \
         XDG_CONFIG_HOME={home}/config TERM=xterm-256color {binary} {args}; \
         echo EXIT=$?; sleep 60",
        home = home.display(),
        binary = env!("CARGO_BIN_EXE_relaydeck"),
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "deck",
        "-x",
        "160",
        "-y",
        "40",
        &command,
    ]);
    assert!(started.status.success());
}

/// `relaydeck serve` on a free loopback port with `data` as its data folder.
fn serve(data: &std::path::Path) -> (Child, String) {
    serve_with(data, &[])
}

fn serve_with(data: &std::path::Path, extra: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relaydeck"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env_remove("RELAYDECK_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    (child, addr)
}

#[test]
fn in_a_terminal_connect_fails_fast_finds_the_stored_token_and_reports_a_lost_link() {
    let home = tempfile::tempdir().unwrap();

    // Nothing listens on port 1: a sentence and exit 1 within ten seconds.
    let tmux = Tmux::joining_wrapped("connect-unreachable");
    let started = Instant::now();
    start(
        &tmux,
        home.path(),
        "connect ws://127.0.0.1:1 --admin-token t",
    );
    let screen = tmux.wait_for("the exit status", Duration::from_secs(10), |s| {
        s.contains("EXIT=")
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("could not reach the server"), "{screen}");
    drop(tmux);

    let data = home.path().join("serve-data");
    let (mut server, addr) = serve(&data);

    // A wrong token: named, and exit 1.
    let tmux = Tmux::joining_wrapped("connect-refused");
    start(
        &tmux,
        home.path(),
        &format!("connect ws://{addr} --admin-token wrong"),
    );
    let screen = tmux.wait_for("the exit status", Duration::from_secs(10), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("refused the admin token"), "{screen}");
    drop(tmux);

    // No token given: the one `serve` stored in the same data folder is used.
    let tmux = Tmux::joining_wrapped("connect-stored");
    start(
        &tmux,
        home.path(),
        &format!("--data-dir {} connect ws://{addr}", data.display()),
    );
    tmux.wait_for("the connected console", Duration::from_secs(15), |s| {
        s.contains("peers ·")
    });
    // The server goes away; quitting then does not claim success.
    let _ = server.kill();
    let _ = server.wait();
    tmux.wait_for("the lost link", Duration::from_secs(15), |s| {
        s.contains("CONNECTION LOST")
    });
    tmux.run(&["send-keys", "-t", "deck", "q"]);
    let screen = tmux.wait_for("the exit status", Duration::from_secs(10), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("quit while the connection"), "{screen}");
}

#[test]
fn in_a_terminal_connect_opens_the_console_over_wss_with_a_ca_file() {
    let home = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = home.path().join("server.crt");
    let key = home.path().join("server.key");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let data = home.path().join("serve-data");
    let (mut server, addr) = serve_with(
        &data,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );

    // Without the CA, the refusal says what to pass.
    let tmux = Tmux::joining_wrapped("connect-untrusted");
    start(
        &tmux,
        home.path(),
        &format!("--data-dir {} connect wss://{addr}", data.display()),
    );
    let screen = tmux.wait_for("the exit status", Duration::from_secs(10), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("--ca-file"), "{screen}");
    drop(tmux);

    let tmux = Tmux::joining_wrapped("connect-wss");
    start(
        &tmux,
        home.path(),
        &format!(
            "--data-dir {} connect wss://{addr} --ca-file {}",
            data.display(),
            cert.display()
        ),
    );
    tmux.wait_for("the connected console", Duration::from_secs(15), |s| {
        s.contains("peers ·")
    });
    tmux.run(&["send-keys", "-t", "deck", "q"]);
    let screen = tmux.wait_for("the exit status", Duration::from_secs(10), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    let _ = server.kill();
    let _ = server.wait();
}
