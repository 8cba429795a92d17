//! The console: a client of the server's `/admin` endpoint, drawn with ratatui. It depends on
//! [`crate::protocol`], [`crate::catalog`] and [`crate::wsclient`], never on the server.
//!
//! | module | its one job |
//! |---|---|
//! | [`model`] | the server's state, a pure reducer of the admin snapshot and deltas |
//! | [`app`] | the console's state: model, log, tables, composer, view and mode; messages and effects |
//! | [`update`] | `App::update`: every message in, effects out; no I/O, no clock (the composer's keys, sending and recording in `update/composer.rs`) |
//! | [`action`] | the one `Action` a key or a `:` command line produces |
//! | [`commands`] | the one table of commands: parsing a line into an `Action`, completion, help |
//! | [`detail`] | which object a detail shows |
//! | [`views`] | the table of views: title, command, key, columns, rows, the deltas each follows |
//! | [`rows`] | each table view's keys and rows, projected from the model |
//! | [`tables`] | a view's rows filtered and sorted, with an index that follows deltas |
//! | [`log`] | the bounded live log, decoded on arrival, readable back |
//! | [`confirm`] | the question asked before each admin action and the command it sends |
//! | [`composer`] | the frame editor, its targets and templates, recording as a session |
//! | [`frames`] | whole frames: a log entry in full, a peer's recorded frames, what a copy takes |
//! | [`ui`] | `draw(&App, &mut Frame)`, one file per pane |
//! | [`keymap`], [`theme`] | keys and colours as data, with user overrides |
//! | [`net`] | the admin link with reconnection, and the composer's plain client |
//!
//! [`run`] is the loop: it takes the terminal, the input events and the server link as
//! arguments, so a test drives the whole console on `TestBackend` against a real server.

pub mod action;
pub mod app;
pub mod commands;
pub mod composer;
pub mod confirm;
pub mod detail;
pub mod frames;
pub mod history;
pub mod keymap;
pub mod log;
pub mod model;
pub mod net;
pub mod rows;
mod short_key;
pub mod tables;
pub mod theme;
pub mod triage;
pub mod ui;
pub mod update;
pub mod views;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyEventKind};
use futures_util::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::app::{App, Effect, Msg};
pub use self::net::Link;
use crate::catalog::Severity;

/// The shortest time between two draws (about 30 frames a second).
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// How often the clock reaches the app.
const TICK: Duration = Duration::from_millis(250);
/// At most this many server messages, or this long, are applied between two looks at the
/// keyboard and the draw deadline.
const COALESCE_MAX_MESSAGES: usize = 4096;
const COALESCE_MAX_TIME: Duration = Duration::from_millis(8);

/// The folder for the user's keymap and themes.
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "relaydeck", "relaydeck")
        .map(|d| d.config_dir().to_path_buf())
}

/// Run the console on `terminal` until the user quits or `input` ends, and hand back the app
/// as it was then. Terminal events come from `input` (crossterm's `EventStream` in the binary,
/// a channel in tests), the server through `link`; `:record` writes into `sessions_dir`.
/// Bursts of server messages are applied together and drawn once; nothing is drawn when
/// nothing changed.
///
/// # Errors
/// Drawing failed, or the input stream reported an error.
pub async fn run<B, E>(
    terminal: &mut Terminal<B>,
    mut app: App,
    mut input: E,
    link: Link,
    sessions_dir: Option<PathBuf>,
) -> anyhow::Result<App>
where
    B: Backend,
    E: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let (mut incoming, commands, network, replay) = link.into_parts();
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<Msg>();
    let size = terminal.size()?;
    let mut effects = app.update(Msg::Resize(size.width, size.height));
    effects.extend(app.update(Msg::Tick(crate::clock::now_ms())));
    let mut tick = tokio::time::interval(TICK);
    let mut last_draw: Option<Instant> = None;
    let mut link_open = true;
    'main: loop {
        for effect in std::mem::take(&mut effects) {
            match effect {
                Effect::Quit => break 'main,
                Effect::Send(envelope) => {
                    let _ = commands.send(envelope);
                }
                Effect::Direct { url, frames } => {
                    tokio::spawn(net::direct_exchange(url, frames, local_tx.clone()));
                }
                Effect::LoadSession { label, path } => {
                    let session =
                        crate::session::Session::load(Path::new(&path)).map_err(|e| e.to_string());
                    let _ = local_tx.send(Msg::SessionLoaded { label, session });
                }
                Effect::RunSession(run) => {
                    tokio::spawn(net::run_session(*run, replay.clone(), local_tx.clone()));
                }
                Effect::Copy { label, text } => {
                    let notice = copy(sessions_dir.as_deref(), &label, &text);
                    let _ = local_tx.send(notice);
                }
                Effect::SaveSession { name, text } => {
                    let notice = match save_session(sessions_dir.as_deref(), &name, &text) {
                        Ok(path) => Msg::Notice(
                            format!(
                                "session saved to {}; replay it with: relaydeck replay {}",
                                path.display(),
                                path.display()
                            ),
                            Severity::Info,
                        ),
                        Err(problem) => Msg::Notice(problem, Severity::Error),
                    };
                    let _ = local_tx.send(notice);
                }
            }
        }
        // Draw when something changed, but no more often than FRAME_INTERVAL: a server that
        // sends deltas one by one then costs at most one draw per interval, not one per delta.
        let mut next_draw = match last_draw {
            Some(at) if app.dirty => Some(at + FRAME_INTERVAL),
            None if app.dirty => Some(Instant::now()),
            _ => None,
        };
        if next_draw.is_some_and(|at| at <= Instant::now()) {
            app.settle();
            terminal.draw(|frame| ui::draw(&app, frame))?;
            app.dirty = false;
            last_draw = Some(Instant::now());
            next_draw = None;
        }
        let draw_due = async move {
            match next_draw {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // The user first: however fast the server talks, a key (`q`, ctrl-c) is handled
            // within one pass of the loop.
            biased;
            event = input.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    effects.extend(app.update(Msg::Key(key)));
                }
                Some(Ok(TermEvent::Paste(text))) => effects.extend(app.update(Msg::Paste(text))),
                Some(Ok(TermEvent::Resize(width, height))) => {
                    effects.extend(app.update(Msg::Resize(width, height)));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => break 'main,
            },
            _ = draw_due => {}
            Some(message) = local_rx.recv() => effects.extend(app.update(message)),
            _ = tick.tick() => effects.extend(app.update(Msg::Tick(crate::clock::now_ms()))),
            message = incoming.recv(), if link_open => match message {
                Some(message) => {
                    effects.extend(app.update(message));
                    // Coalesce what is already waiting into one draw, but only for a bounded
                    // time: a server that never pauses must not keep keys and draws waiting.
                    let started = Instant::now();
                    let mut taken = 1;
                    while taken < COALESCE_MAX_MESSAGES && started.elapsed() < COALESCE_MAX_TIME {
                        let Ok(message) = incoming.try_recv() else { break };
                        effects.extend(app.update(message));
                        taken += 1;
                    }
                }
                None => link_open = false,
            },
        }
    }
    drop(commands);
    if let Some(network) = network {
        let _ = tokio::time::timeout(Duration::from_secs(1), network).await;
    }
    Ok(app)
}

/// Put `text` on the terminal's clipboard with OSC 52 (when the console draws on a real
/// terminal; many terminals and tmux honour it) and into a file beside the sessions, since a
/// terminal may ignore the sequence and a frame of megabytes is better read from a file.
fn copy(sessions_dir: Option<&Path>, label: &str, text: &str) -> Msg {
    use std::io::{IsTerminal as _, Write as _};
    let mut stdout = std::io::stdout();
    let clipboard = stdout.is_terminal()
        && stdout
            .write_all(frames::osc52(text).as_bytes())
            .and_then(|()| stdout.flush())
            .is_ok();
    let saved = sessions_dir
        .and_then(Path::parent)
        .map(|dir| dir.join("copied"))
        .ok_or_else(|| "no data folder to save it in".to_owned())
        .and_then(|dir| save_private(&dir, &format!("{label}.txt"), text));
    let to_clipboard = if clipboard {
        "copied to the clipboard; "
    } else {
        ""
    };
    match saved {
        Ok(path) => Msg::Notice(
            format!("{to_clipboard}saved to {}", path.display()),
            Severity::Info,
        ),
        Err(problem) if clipboard => Msg::Notice(
            format!("copied to the clipboard; not saved: {problem}"),
            Severity::Warning,
        ),
        Err(problem) => Msg::Notice(format!("not copied: {problem}"), Severity::Error),
    }
}

/// Write a session into the sessions folder, never over an existing file: a recording or an
/// export is evidence, and a second one with the same name must not erase the first.
fn save_session(dir: Option<&Path>, name: &str, text: &str) -> Result<PathBuf, String> {
    let dir = dir.ok_or("no data folder to save sessions in")?;
    save_private(dir, &format!("{name}.jsonl"), text)
}

/// Write `text` as `dir/file_name`, never over an existing file, readable by the user alone.
fn save_private(dir: &Path, file_name: &str, text: &str) -> Result<PathBuf, String> {
    use std::io::Write as _;
    // Sessions hold what players sent (tokens and passwords among it): the folder and the
    // files are the user's alone.
    let mut folder = std::fs::DirBuilder::new();
    folder.recursive(true);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        folder.mode(0o700);
        options.mode(0o600);
    }
    folder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(file_name);
    let mut file = options.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} already exists; choose another name", path.display())
        }
        _ => format!("cannot write {}: {e}", path.display()),
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
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
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        // A pasted log arrives as one event, not as keys that each redraw the editor.
        crossterm::event::EnableBracketedPaste
    )?;
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
        crossterm::event::DisableBracketedPaste,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}
