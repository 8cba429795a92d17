//! The console's connections, both through [`crate::wsclient`]: the admin link (every server
//! message forwarded to the app, the app's commands sent, reconnection with exponential
//! backoff and jitter, a fresh snapshot on each reconnect resynchronising the views), and the
//! composer's plain client.
//!
//! The link follows the catalog's advice for a refused credential: a 401 or 403 is "not on
//! this connection", so it stops instead of retrying, and says so through [`Link::fatal`].
//! Only failures after the server was reached once (a restart, a network blip) are retried.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::app::{Connection, Msg};
use crate::protocol::admin::{CommandEnvelope, ServerMessage};
use crate::session::replay::Target;
use crate::wsclient::{describe_close, Client, ConnectError, Received, Request};

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long the composer's plain client listens for replies.
const DIRECT_LISTEN: Duration = Duration::from_secs(3);
const DIRECT_CONNECT: Duration = Duration::from_secs(5);

/// The console's side of a server link: what arrives, and where commands go. The loop takes
/// it as an argument, so a test can hand it any link, a real one included.
pub struct Link {
    pub incoming: mpsc::UnboundedReceiver<Msg>,
    pub commands: mpsc::UnboundedSender<CommandEnvelope>,
    task: Option<JoinHandle<()>>,
    /// Where sessions run from the console go: the server behind the link.
    pub replay: Option<Target>,
    fatal: Option<watch::Receiver<Option<String>>>,
}

impl Link {
    /// A link from channels the caller drives itself.
    pub fn from_channels(
        incoming: mpsc::UnboundedReceiver<Msg>,
        commands: mpsc::UnboundedSender<CommandEnvelope>,
    ) -> Link {
        Link {
            incoming,
            commands,
            task: None,
            replay: None,
            fatal: None,
        }
    }

    /// Run `:repro` sessions against `target` (a link from channels has no server of its own).
    pub fn with_replay(mut self, target: Target) -> Link {
        self.replay = Some(target);
        self
    }

    /// Connect to the admin endpoint at `url` (and keep reconnecting) in a task of its own.
    pub fn connect(url: String, token: String) -> Link {
        Link::start(None, url, token)
    }

    /// Carry on from a connection already made (see [`first_contact`]), reconnecting to
    /// `url` with `token` when it breaks.
    pub fn connected(client: Client, url: String, token: String) -> Link {
        Link::start(Some(client), url, token)
    }

    fn start(first: Option<Client>, url: String, token: String) -> Link {
        let (events_tx, incoming) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (fatal_tx, fatal) = watch::channel(None);
        // The admin endpoint's host and port are the server's; the token lets sessions run
        // their admin steps as this console would.
        let replay = Target::from_url(&url, Some(token.clone())).ok();
        let task = tokio::spawn(run(first, url, token, events_tx, commands_rx, fatal_tx));
        Link {
            incoming,
            commands,
            task: Some(task),
            replay,
            fatal: Some(fatal),
        }
    }

    /// Becomes `Some(sentence)` when the link gave up for good (the server refused the token
    /// after a reconnect): the console should end with that sentence.
    pub fn fatal(&self) -> Option<watch::Receiver<Option<String>>> {
        self.fatal.clone()
    }

    pub(super) fn into_parts(
        self,
    ) -> (
        mpsc::UnboundedReceiver<Msg>,
        mpsc::UnboundedSender<CommandEnvelope>,
        Option<JoinHandle<()>>,
        Option<Target>,
    ) {
        (self.incoming, self.commands, self.task, self.replay)
    }
}

/// How long the first attempt may take: a console that cannot reach its server should say so
/// well within ten seconds.
pub const FIRST_CONTACT_TIMEOUT: Duration = Duration::from_secs(6);

/// The first connection, made before the console takes the terminal, so that a server that
/// is not there, or refuses the token, ends `connect` with a sentence instead of a console
/// that retries forever.
///
/// # Errors
/// The attempt's [`ConnectError`].
pub async fn first_contact(url: &str, token: &str) -> Result<Client, ConnectError> {
    Request::new(url)
        .bearer(token)
        .timeout(FIRST_CONTACT_TIMEOUT)
        .connect()
        .await
}

/// An admin token to try, and where it came from (messages name the source, never the
/// token).
pub struct TokenSource {
    pub from: String,
    pub token: String,
}

/// Reach the admin endpoint at `admin_url` once, with the first of `tokens` the server
/// accepts: a server that is not there, or refuses every token, ends here with a sentence
/// that says which, and what was tried.
///
/// # Errors
/// That sentence.
pub async fn reach(admin_url: &str, tokens: Vec<TokenSource>) -> anyhow::Result<(Client, String)> {
    let mut refused = Vec::new();
    let mut last_status = 401;
    for source in tokens {
        match first_contact(admin_url, &source.token).await {
            Ok(client) => return Ok((client, source.token)),
            Err(ConnectError::Refused {
                status: status @ (401 | 403),
                ..
            }) => {
                last_status = status;
                refused.push(source.from);
            }
            Err(ConnectError::Unreachable(error)) => anyhow::bail!(
                "could not reach the server ({error}). Nothing answered at that address: is \
                 `relaydeck serve` running there, on this port? The console retries only after \
                 it has been connected once"
            ),
            Err(ConnectError::TimedOut(_)) => anyhow::bail!(
                "no answer from {admin_url} within {} s: check the address, and that no firewall \
                 drops the connection",
                FIRST_CONTACT_TIMEOUT.as_secs()
            ),
            Err(ConnectError::Refused { status, body }) => anyhow::bail!(
                "{admin_url} refused the console's connection with HTTP {status}{}: is this a \
                 relaydeck server, and the right scheme (ws:// or wss://)?",
                if body.trim().is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::text::one_line(body.trim(), 120))
                }
            ),
            Err(ConnectError::Failed(error)) => anyhow::bail!("{error}"),
        }
    }
    if refused.is_empty() {
        anyhow::bail!("no admin token to try");
    }
    anyhow::bail!(
        "{}. Tried: {}",
        refused_token_sentence(last_status),
        refused.join("; ")
    )
}

/// Why a connection attempt failed, and whether trying again can help.
enum Failure {
    /// Reconnect with backoff: the server restarted, the network dropped.
    Transient(String),
    /// The server refused the credential: retrying with the same token cannot help.
    Refused(String),
}

/// A refused admin upgrade, as the person at the console needs to read it.
pub fn refused_token_sentence(status: u16) -> String {
    format!(
        "the server refused the admin token (HTTP {status}): it is not this server's admin or \
         viewer token. Use the token `relaydeck serve` printed the path of (the file \
         admin-token in its data folder), or the one it was started with (--admin-token / \
         RELAYDECK_ADMIN_TOKEN)"
    )
}

/// Run until `commands` is closed (the console quit) or the server refuses the token.
async fn run(
    mut first: Option<Client>,
    url: String,
    token: String,
    events: mpsc::UnboundedSender<Msg>,
    mut commands: mpsc::UnboundedReceiver<CommandEnvelope>,
    fatal: watch::Sender<Option<String>>,
) {
    let mut attempt: u32 = 0;
    loop {
        let error = match session(first.take(), &url, &token, &events, &mut commands).await {
            Ok(()) => return,
            Err(Failure::Refused(sentence)) => {
                let _ = events.send(Msg::Connection(Connection::Lost {
                    error: format!("{sentence} — not retrying"),
                    retry_in_ms: 0,
                    attempt: attempt.saturating_add(1),
                }));
                let _ = fatal.send(Some(sentence));
                return;
            }
            Err(Failure::Transient(error)) => error,
        };
        attempt = attempt.saturating_add(1);
        let base = BACKOFF_START
            .saturating_mul(1 << attempt.min(6))
            .min(BACKOFF_MAX);
        let jitter = {
            use rand::RngExt as _;
            rand::rng().random_range(0..=base.as_millis() as u64 / 4)
        };
        let wait = base + Duration::from_millis(jitter);
        if events
            .send(Msg::Connection(Connection::Lost {
                error,
                retry_in_ms: wait.as_millis() as u64,
                attempt,
            }))
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            closed = commands.recv() => if closed.is_none() { return },
        }
    }
}

/// One connection (`first`, or a new one); `Ok` when the console quit, `Err` with the reason
/// when the link broke.
async fn session(
    first: Option<Client>,
    url: &str,
    token: &str,
    events: &mpsc::UnboundedSender<Msg>,
    commands: &mut mpsc::UnboundedReceiver<CommandEnvelope>,
) -> Result<(), Failure> {
    let connected = match first {
        Some(client) => Ok(client),
        None => Request::new(url).bearer(token).connect().await,
    };
    let mut client = match connected {
        Ok(client) => client,
        Err(ConnectError::Refused {
            status: status @ (401 | 403),
            ..
        }) => return Err(Failure::Refused(refused_token_sentence(status))),
        Err(ConnectError::TimedOut(_)) => {
            return Err(Failure::Transient(
                "reconnecting: the server did not answer in time".to_owned(),
            ))
        }
        Err(ConnectError::Unreachable(error)) => {
            return Err(Failure::Transient(format!(
                "reconnecting: the server is not answering (restarting?): {error}"
            )))
        }
        Err(error) => return Err(Failure::Transient(format!("reconnecting: {error}"))),
    };
    let _ = events.send(Msg::Connection(Connection::Connected));
    let lost = |why: String| Failure::Transient(format!("the link dropped: {why}"));
    loop {
        tokio::select! {
            incoming = client.receive() => match incoming {
                Received::Text(text) => match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(message) => {
                        if events.send(Msg::Server(message)).is_err() {
                            return Ok(());
                        }
                    }
                    Err(error) => tracing::warn!(%error, "ignoring an admin message this console does not understand"),
                },
                Received::Binary(_) => {}
                Received::Close(parts) => {
                    return Err(lost(format!("the server closed the connection: {}", describe_close(parts.as_ref()))))
                }
                Received::Ended => return Err(lost("the connection ended".to_owned())),
                Received::Failed(error) => return Err(lost(error)),
            },
            command = commands.recv() => match command {
                Some(envelope) => {
                    let text = serde_json::to_string(&envelope).map_err(|e| lost(e.to_string()))?;
                    client.send_text(text).await.map_err(lost)?;
                }
                None => {
                    client.close().await;
                    return Ok(());
                }
            },
        }
    }
}

/// The composer's plain client: connect, send, and report what comes back for a while.
pub async fn direct_exchange(url: String, frames: Vec<String>, events: mpsc::UnboundedSender<Msg>) {
    let report = |text: String| {
        let _ = events.send(Msg::DirectReply(text));
    };
    let mut client = match Request::new(url.as_str())
        .timeout(DIRECT_CONNECT)
        .connect()
        .await
    {
        Ok(client) => client,
        Err(ConnectError::TimedOut(_)) => {
            return report(format!("(timed out connecting to {url})"))
        }
        Err(error) => return report(format!("(could not connect to {url}: {error})")),
    };
    for frame in frames {
        if let Err(error) = client.send_text(frame).await {
            return report(format!("(sending failed: {error})"));
        }
    }
    let deadline = tokio::time::Instant::now() + DIRECT_LISTEN;
    while let Some(received) = client.receive_until(deadline).await {
        match received {
            Received::Text(text) => report(text),
            Received::Binary(bytes) => report(format!("(binary frame of {} bytes)", bytes.len())),
            Received::Close(parts) => return report(describe_close(parts.as_ref())),
            Received::Ended => return report("(the connection ended)".to_owned()),
            Received::Failed(error) => return report(format!("(receive failed: {error})")),
        }
    }
    client.close().await;
}

/// Run `run` against `target`, reporting every step and frame as [`Msg::Repro`] under
/// `label`, and the whole outcome last.
pub async fn run_session(
    run: super::app::ReproRun,
    target: Option<Target>,
    events: mpsc::UnboundedSender<Msg>,
) {
    use super::app::ReproProgress;
    let label = run.label.clone();
    let Some(target) = target else {
        let _ = events.send(Msg::Repro(
            label,
            ReproProgress::Failed(
                "this console has no server address to run sessions against".into(),
            ),
        ));
        return;
    };
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    let frames_rx = std::sync::Mutex::new(frames_rx);
    // The frames a step exchanged are reported just before the step itself, so the log reads
    // in the order things happened.
    let flush_frames = |events: &mpsc::UnboundedSender<Msg>, label: &str| {
        if let Ok(mut frames) = frames_rx.lock() {
            while let Ok(frame) = frames.try_recv() {
                let _ = events.send(Msg::Repro(label.to_owned(), ReproProgress::Frame(frame)));
            }
        }
    };
    let mut observer = |report: &crate::session::replay::StepReport| {
        flush_frames(&events, &label);
        let _ = events.send(Msg::Repro(
            label.clone(),
            ReproProgress::Step(report.clone()),
        ));
    };
    let report = crate::session::replay::run_streaming(
        &run.session,
        &target,
        &mut observer,
        Some(frames_tx),
    )
    .await;
    flush_frames(&events, &label);
    let _ = events.send(Msg::Repro(label, ReproProgress::Done(report)));
}
