//! The console: a client of the server's `/admin` endpoint, drawn with ratatui.
//!
//! - [`app`]: state and `update` (no I/O); [`ui`]: pure drawing; [`keymap`], [`theme`]: data.
//! - [`net`]: the admin connection with reconnection.
//! - [`run`]: the main loop, generic over the backend so tests drive it on `TestBackend`.

pub mod app;
pub mod composer;
pub mod keymap;
pub mod net;
pub mod theme;
pub mod ui;

use std::time::Duration;

use tokio::time::Instant;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use self::app::{App, Effect, Msg};
use self::theme::Theme;

/// The shortest time between two draws (about 30 frames a second).
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

pub struct Options {
    pub admin_url: String,
    pub admin_token: String,
    pub theme: Theme,
    pub app: App,
    /// Where `:record` writes session files.
    pub sessions_dir: Option<std::path::PathBuf>,
}

/// The folder for the user's keymap and themes.
pub fn config_dir() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("dev", "relaydeck", "relaydeck")
        .map(|d| d.config_dir().to_path_buf())
}

/// Run the console on `terminal` until the user quits. Bursts of server messages are applied
/// together and drawn once; nothing is drawn when nothing changed.
pub async fn run<B: Backend>(terminal: &mut Terminal<B>, options: Options) -> anyhow::Result<()> {
    let Options {
        admin_url,
        admin_token,
        theme,
        mut app,
        sessions_dir,
    } = options;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Msg>();
    let events_tx_for_direct = events_tx.clone();
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let network = tokio::spawn(net::run(admin_url, admin_token, events_tx, commands_rx));
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_draw: Option<Instant> = None;
    'main: loop {
        // Draw when something changed, but no more often than FRAME_INTERVAL: a server that
        // sends deltas one by one then costs at most one draw per interval, not one per delta.
        let mut next_draw = match last_draw {
            Some(at) if app.dirty => Some(at + FRAME_INTERVAL),
            None if app.dirty => Some(Instant::now()),
            _ => None,
        };
        if next_draw.is_some_and(|at| at <= Instant::now()) {
            terminal.draw(|frame| ui::draw(&mut app, &theme, frame))?;
            app.dirty = false;
            last_draw = Some(Instant::now());
            next_draw = None;
        }
        let draw_due = async move {
            match next_draw {
                Some(at) => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        let mut effects = Vec::new();
        tokio::select! {
            _ = draw_due => {}
            message = events_rx.recv() => {
                let Some(message) = message else { break 'main };
                effects.extend(app.update(message));
                // Coalesce: apply whatever else is already waiting before drawing again.
                while let Ok(message) = events_rx.try_recv() {
                    effects.extend(app.update(message));
                }
            }
            event = keys.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => effects.extend(app.update(Msg::Key(key))),
                Some(Ok(TermEvent::Resize(_, _))) => app.dirty = true,
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => break 'main,
            },
            _ = tick.tick() => {
                // Keeps the reconnect countdown and relative figures fresh.
                if matches!(app.connection, app::Connection::Lost { .. }) {
                    app.dirty = true;
                }
            }
        }
        let mut effects_after = Vec::new();
        for effect in effects {
            match effect {
                Effect::Quit => break 'main,
                Effect::Send(envelope) => {
                    let _ = commands_tx.send(envelope);
                }
                Effect::Direct { url, frames } => {
                    tokio::spawn(direct_exchange(url, frames, events_tx_for_direct.clone()));
                }
                Effect::SaveSession { name, text } => {
                    let outcome = save_session(sessions_dir.as_deref(), &name, &text);
                    let notice = match outcome {
                        Ok(path) => Msg::Notice(
                            format!(
                                "session saved to {}; replay it with: relaydeck replay {}",
                                path.display(),
                                path.display()
                            ),
                            crate::catalog::Severity::Info,
                        ),
                        Err(problem) => Msg::Notice(problem, crate::catalog::Severity::Error),
                    };
                    effects_after.extend(app.update(notice));
                }
            }
        }
        for effect in effects_after {
            if let Effect::Send(envelope) = effect {
                let _ = commands_tx.send(envelope);
            }
        }
    }
    drop(commands_tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), network).await;
    Ok(())
}

/// How long the composer's plain client listens for replies.
const DIRECT_LISTEN: Duration = Duration::from_secs(3);

/// The composer's plain client: connect, send, and report what comes back for a while.
async fn direct_exchange(url: String, frames: Vec<String>, events: mpsc::UnboundedSender<Msg>) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let report = |text: String| {
        let _ = events.send(Msg::DirectReply(text));
    };
    let mut socket = match tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(error)) => return report(format!("(could not connect to {url}: {error})")),
        Err(_) => return report(format!("(timed out connecting to {url})")),
    };
    for frame in frames {
        if let Err(error) = socket.send(Message::Text(frame.into())).await {
            return report(format!("(sending failed: {error})"));
        }
    }
    let deadline = tokio::time::Instant::now() + DIRECT_LISTEN;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Text(text)))) => report(text.to_string()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                report(match frame {
                    Some(frame) => format!("close {} {}", u16::from(frame.code), frame.reason),
                    None => "close".to_owned(),
                });
                return;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => return report(format!("(receive failed: {error})")),
            Ok(None) => return report("(the connection ended)".to_owned()),
        }
    }
    let _ = socket.close(None).await;
}

fn save_session(
    dir: Option<&std::path::Path>,
    name: &str,
    text: &str,
) -> Result<std::path::PathBuf, String> {
    let dir = dir.ok_or("no data folder to save sessions in")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Put the terminal in raw mode on the alternate screen, and restore it on every exit,
/// panics included.
pub fn with_terminal<T>(
    body: impl FnOnce(
        &mut Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>,
    ) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let result = Terminal::new(backend)
        .map_err(anyhow::Error::from)
        .and_then(|mut terminal| body(&mut terminal));
    restore_terminal();
    result
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}
