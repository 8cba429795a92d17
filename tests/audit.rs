//! Admin actions that cannot be lost: the audit log of the real binary under SIGKILL and on a
//! full disk, and app status changes from two consoles at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};

use common::{TestServer, RECEIVE_TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use relaydeck::protocol::admin::AppStatus;
use relaydeck::server::persist::{load_statuses, read_audit, AuditPhase, AuditRecord};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "audit-test-token-of-at-least-32-characters";

/// `relaydeck serve` on 127.0.0.1:0 in `data`; `file_limit_kib` caps the size of any file
/// it writes (RLIMIT_FSIZE, with SIGXFSZ ignored so a write past it fails with EFBIG the way
/// a full disk fails with ENOSPC). Returns the child and its address, read from its first
/// line of output.
fn serve(data: &Path, file_limit_kib: Option<u64>) -> (Child, String) {
    serve_with(data, file_limit_kib, &["--admin-token", TOKEN])
}

fn serve_with(data: &Path, file_limit_kib: Option<u64>, extra: &[&str]) -> (Child, String) {
    let binary = env!("CARGO_BIN_EXE_relaydeck");
    let mut command = match file_limit_kib {
        None => Process::new(binary),
        Some(kib) => {
            let mut bash = Process::new("bash");
            bash.args([
                "-c",
                &format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""),
                binary,
            ]);
            bash
        }
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .env_remove("RELAYDECK_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(data.with_extension("stderr")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr = first_line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();
    (child, addr)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn admin(addr: &str) -> (Socket, Value) {
    let mut request = format!("ws://{addr}/admin").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let snapshot = next_of(&mut socket, "snapshot").await.unwrap();
    (socket, snapshot)
}

/// The next message of `kind`; `None` when the connection ends first.
async fn next_of(socket: &mut Socket, kind: &str) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("the server answers in time")?;
        let Ok(Message::Text(text)) = message else {
            return None;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == kind {
            return Some(value);
        }
    }
}

async fn send(socket: &mut Socket, command: Value) {
    socket
        .send(Message::Text(command.to_string().into()))
        .await
        .unwrap();
}

fn app_status(snapshot: &Value, app: &str) -> String {
    snapshot["snapshot"]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every line of the raw file is a whole record, and every outcome follows its intent.
fn whole_log(data: &Path) -> Vec<AuditRecord> {
    let raw = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert!(
        raw.is_empty() || raw.ends_with('\n'),
        "the last line is whole"
    );
    let records = read_audit(data).expect("every line is a complete record");
    let mut intents = HashSet::new();
    for record in &records {
        match record.phase {
            AuditPhase::Intent => assert!(intents.insert(record.id), "one intent per action"),
            AuditPhase::Outcome => assert!(
                intents.contains(&record.id),
                "the outcome of action {} follows its intent",
                record.id
            ),
        }
    }
    records
}

fn command(index: u64) -> Value {
    // Status changes (state file and log) interleaved with refused kicks (log only).
    if index % 2 == 0 {
        let status = if index % 4 == 0 {
            "suspended"
        } else {
            "active"
        };
        json!({"id": index, "command": "set_app_status", "app": "demo", "status": status})
    } else {
        json!({"id": index, "command": "kick", "peer": format!("p-none-{index}")})
    }
}

#[test]
fn the_audit_log_and_the_state_survive_sigkill_mid_stream() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut child, addr) = serve(&data, None);

    const SENT: u64 = 400;
    let acknowledged = runtime.block_on(async {
        let (mut socket, _) = admin(&addr).await;
        for index in 1..=SENT {
            send(&mut socket, command(index)).await;
        }
        // Kill the server while most commands are still queued or being written.
        let mut acknowledged = 0;
        while acknowledged < SENT / 4 {
            let result = next_of(&mut socket, "result").await.unwrap();
            acknowledged = result["id"].as_u64().unwrap();
        }
        acknowledged
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let records = whole_log(&data);
    let outcomes = records
        .iter()
        .filter(|r| r.phase == AuditPhase::Outcome)
        .count() as u64;
    assert!(
        outcomes >= acknowledged,
        "every acknowledged action has its outcome on record: {outcomes} < {acknowledged}"
    );
    let dangling = records.len() as u64 - 2 * outcomes;
    assert!(
        dangling <= 1,
        "commands run one at a time: at most the one in flight lacks its outcome ({dangling})"
    );
    let run = outcomes + dangling;
    assert!(
        run < SENT,
        "the kill landed mid-stream ({run} of {SENT} ran)"
    );

    // The state file is whole and says what the last action that reached it said.
    let statuses = load_statuses(&data).unwrap();
    let last_set = |upto: u64| {
        (1..=upto)
            .rev()
            .map(command)
            .find(|c| c["command"] == "set_app_status")
            .map(|c| c["status"].as_str().unwrap().to_owned())
    };
    let possible: Vec<Option<String>> = vec![last_set(run - dangling), last_set(run)];
    let persisted = statuses.get("demo").map(|s| s.id().to_owned());
    assert!(
        possible.contains(&persisted),
        "demo is {persisted:?}, expected one of {possible:?}"
    );

    // A restart reads both back and numbers new actions after the old ones.
    let (mut child, addr) = serve(&data, None);
    runtime.block_on(async {
        let (mut socket, snapshot) = admin(&addr).await;
        assert_eq!(
            Some(app_status(&snapshot, "demo")),
            persisted.or(Some("active".to_owned()))
        );
        send(
            &mut socket,
            json!({"id": 1, "command": "close_room", "room": "NONE"}),
        )
        .await;
        next_of(&mut socket, "result").await.unwrap();
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let after = whole_log(&data);
    let old_max = records.iter().map(|r| r.id).max().unwrap();
    assert!(after.last().unwrap().id > old_max);
}

#[test]
fn a_full_disk_refuses_actions_with_a_clear_error_and_keeps_the_log_whole() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut child, addr) = serve(&data, Some(8));

    runtime.block_on(async {
        let (mut socket, _) = admin(&addr).await;
        let mut refusal = None;
        for index in 1..=400u64 {
            send(
                &mut socket,
                json!({"id": index, "command": "kick", "peer": format!("p-none-{index}-{}", "x".repeat(60))}),
            )
            .await;
            let result = next_of(&mut socket, "result").await.unwrap();
            let message = result["message"].as_str().unwrap().to_owned();
            if message.starts_with("refused: the audit log") {
                refusal = Some(message);
                break;
            }
            // The intent fitted and the outcome did not: the action ran (here, a refused
            // kick) and the answer says what is missing from the log.
            assert!(
                message.starts_with("no peer")
                    && (!message.contains("audit log")
                        || message.contains("its outcome could not be written to the audit log: File too large")),
                "{message}"
            );
        }
        let refusal = refusal.expect("the 8 KiB limit is reached");
        assert!(
            refusal.starts_with("refused: the audit log cannot be written")
                && refusal.contains("was not done"),
            "{refusal}"
        );

        // An action with effect is refused too, and has none.
        send(
            &mut socket,
            json!({"id": 1000, "command": "set_app_status", "app": "demo", "status": "revoked"}),
        )
        .await;
        let result = next_of(&mut socket, "result").await.unwrap();
        assert_eq!(result["ok"], false, "{result}");
        assert!(
            result["message"]
                .as_str()
                .unwrap()
                .starts_with("refused: the audit log cannot be written"),
            "{result}"
        );
        let (_, snapshot) = admin(&addr).await;
        assert_eq!(app_status(&snapshot, "demo"), "active");
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let records = whole_log(&data);
    assert!(!records.is_empty());
    let size = std::fs::metadata(data.join("audit.jsonl")).unwrap().len();
    assert!(size <= 8 * 1024, "{size}");
    assert!(records.iter().all(|r| r.action == "kick"));
    assert!(load_statuses(&data)
        .unwrap()
        .get("demo")
        .is_none_or(|s| *s == AppStatus::Active));
    let stderr = std::fs::read_to_string(data.with_extension("stderr")).unwrap();
    assert!(
        stderr.contains("refusing an admin action that cannot be audited"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_from_two_consoles_are_serialized() {
    let server = TestServer::demo().await;
    let addr = server.addr.to_string();
    let mut consoles = Vec::new();
    for app in ["demo", "limited-app"] {
        let mut request = format!("ws://{addr}/admin").into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", server.token).parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        next_of(&mut socket, "snapshot").await.unwrap();
        consoles.push((app, socket));
    }
    const CHANGES: u64 = 30;
    let mut tasks = Vec::new();
    for (app, mut socket) in consoles {
        tasks.push(tokio::spawn(async move {
            for index in 1..=CHANGES {
                let status = if index % 2 == 0 {
                    "active"
                } else {
                    "suspended"
                };
                send(
                    &mut socket,
                    json!({"id": index, "command": "set_app_status", "app": app, "status": status}),
                )
                .await;
            }
            for _ in 1..=CHANGES {
                let result = next_of(&mut socket, "result").await.unwrap();
                assert_eq!(result["ok"], true, "{result}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Each console's last change was to `active`: had one persisted a stale view of the
    // other's app, the state file would disagree with the live statuses.
    let persisted = load_statuses(server.data.path()).unwrap();
    let expected = BTreeMap::from([
        ("demo".to_owned(), AppStatus::Active),
        ("limited-app".to_owned(), AppStatus::Active),
    ]);
    for (app, status) in &expected {
        assert_eq!(persisted.get(app), Some(status), "{app}: {persisted:?}");
    }
    let log = read_audit(server.data.path()).unwrap();
    assert_eq!(
        log.len() as u64,
        2 * 2 * CHANGES,
        "intent and outcome of every change"
    );
}

#[cfg(unix)]
#[test]
fn serve_warns_about_a_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let token = data.join("admin-token");
    std::fs::write(&token, "0123456789abcdef").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, _) = serve_with(&data, None, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    // The warning is logged before the listening line is printed.
    let stderr = std::fs::read_to_string(data.with_extension("stderr")).unwrap();
    assert!(
        stderr.contains("can be read by other users (mode 644); chmod 600 it"),
        "{stderr}"
    );
}
