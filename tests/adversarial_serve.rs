//! The real binary under conditions set from outside: a low open-file limit, tokens and URLs
//! that must stay out of the process list, REST calls that must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A running `relaydeck serve`, killed when dropped.
struct Serve {
    child: Child,
    addr: String,
    stderr: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `relaydeck serve` on 127.0.0.1:0 with `data` as its folder, run by `bash -c` with
    /// `shell` (a `ulimit`, say) before it.
    fn start(data: &Path, shell: &str, extra: &[&str]) -> Serve {
        let binary = env!("CARGO_BIN_EXE_relaydeck");
        let stderr = data.with_extension("stderr");
        let mut child = Process::new("bash")
            .args(["-c", &format!("{shell}; exec \"$0\" \"$@\""), binary])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .env_remove("RELAYDECK_ADMIN_TOKEN")
            .env_remove("RELAYDECK_CLUSTER")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let addr = first_line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first_line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .to_owned();
        Serve {
            child,
            addr,
            stderr,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Raise this process's own soft open-file limit, so that the client side of a test can hold
/// as many sockets as it needs.
fn raise_own_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// `GET /health` from `from`, the status line or the error.
async fn health_from(from: &str, addr: &str) -> Result<String, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .map_err(|e| e.to_string())?;
    let mut stream = socket
        .connect(addr.parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// Hold `count` idle sockets to `addr`; those the server refused (or that failed) are dropped.
async fn hold_idle(addr: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
    }
    held
}

/// Issue 19's reproduction: started under `ulimit -Sn 1024`, the server still answers
/// `/health` from another address within a second while one address holds 1,100 idle sockets.
#[tokio::test]
async fn a_soft_open_file_limit_of_1024_is_raised_and_health_answers() {
    raise_own_limit();
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&data.path().join("data"), "ulimit -Sn 1024", &[]);
    let held = hold_idle(&serve.addr, 1_100).await;
    assert_eq!(held.len(), 1_100);
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        health_from("127.0.0.2", &serve.addr),
    )
    .await
    .expect("/health answered within a second");
    assert_eq!(
        answer.unwrap(),
        "HTTP/1.1 200 OK",
        "after {:?}",
        started.elapsed()
    );
    assert!(!serve.log().contains("accept failed"), "{}", serve.log());
}

/// With a hard limit of 256 the caps are lowered under it (and the log says so): one address
/// gets 429s, another still reaches `/health`, and `accept` never runs out of descriptors.
#[tokio::test]
async fn caps_are_lowered_under_a_hard_open_file_limit() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&data.path().join("data"), "ulimit -n 256", &[]);
    let held = hold_idle(&serve.addr, 300).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        health_from("127.0.0.2", &serve.addr),
    )
    .await
    .expect("/health answered within a second");
    assert_eq!(answer.unwrap(), "HTTP/1.1 200 OK");
    // Sockets over the per-address cap were answered 429 rather than left unaccepted.
    let mut refused = 0;
    for mut stream in held.into_iter().rev().take(20) {
        let mut answer = [0u8; 64];
        if let Ok(Ok(read)) = tokio::time::timeout(TIMEOUT, stream.read(&mut answer)).await {
            if answer[..read].starts_with(b"HTTP/1.1 429") {
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 20, "the newest sockets were refused with 429");
    let log = serve.log();
    assert!(log.contains("security.max_connections lowered"), "{log}");
    assert!(!log.contains("accept failed"), "{log}");
}
