//! Drawing: pure functions of the app state. Tables render only the rows that fit, so the
//! cost of a frame depends on the terminal's size, not on how many peers the server has.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Sparkline, Table, Wrap,
};
use ratatui::Frame;

use super::app::{App, Connection, Detail, LogEntry, LogKind, Mode, View};
use super::keymap::Action;
use super::theme::Theme;
use crate::catalog::{self, Severity};
use crate::protocol::admin::Direction;

pub fn draw(app: &mut App, theme: &Theme, frame: &mut Frame) {
    let [tabs, info, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    app.page_rows = body.height.saturating_sub(3) as usize;
    draw_tabs(app, theme, frame, tabs);
    draw_info(app, theme, frame, info);
    match &app.detail {
        Some(detail) => draw_detail(app, theme, frame, body, detail.clone()),
        None => match app.view {
            View::Overview => draw_overview(app, theme, frame, body),
            View::Log => draw_log(app, theme, frame, body, None, "Live log"),
            View::Composer => draw_composer(app, theme, frame, body),
            view => draw_table(app, theme, frame, body, view),
        },
    }
    draw_status(app, theme, frame, status);
    draw_hints(app, theme, frame, hints);
    match &app.mode {
        Mode::Help => draw_help(app, theme, frame),
        Mode::Confirm { question, .. } => draw_confirm(theme, frame, question),
        _ => {}
    }
}

fn draw_tabs(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    // The name goes first when there is room for it; the view tabs always fit in 80 columns.
    let mut spans = Vec::new();
    if area.width >= 90 {
        spans.push(Span::styled(" relaydeck", theme.title));
    }
    spans.push(Span::raw(" "));
    for (index, view) in View::ALL.iter().enumerate() {
        let label = format!("{} {}", index + 1, view.title());
        let style = if *view == app.view {
            theme.selection
        } else {
            theme.muted
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_info(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &app.connection {
        Connection::Lost { error, retry_in_ms, attempt } => Line::from(Span::styled(
            format!(
                " CONNECTION LOST: {error} — retry {attempt} in {:.1} s; the views show the last known state ",
                *retry_in_ms as f64 / 1000.0
            ),
            theme.banner,
        )),
        Connection::Connecting => Line::from(Span::styled(" connecting… ", theme.warning)),
        Connection::Connected => {
            let readonly = if app.readonly { " · READ-ONLY" } else { "" };
            let synced = if app.synced { "" } else { " · resynchronising" };
            Line::from(vec![
                Span::styled(format!(" {} ", app.model.server.listen), theme.accent),
                Span::styled(
                    format!(
                        "v{} · {} peers · {} rooms · {} channels · {} apps{readonly}{synced}",
                        app.model.server.version,
                        app.model.peers.len(),
                        app.model.rooms.len(),
                        app.model.channels.len(),
                        app.model.apps.len()
                    ),
                    theme.muted,
                ),
            ])
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn block<'a>(theme: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(title)
        .title_style(theme.title)
}

fn draw_overview(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(area);
    let mut lines = vec![Line::from(Span::styled("Peers by dialect", theme.header))];
    for dialect in [
        catalog::Dialect::SignalFish,
        catalog::Dialect::Talo,
        catalog::Dialect::Flow,
        catalog::Dialect::Pubsub,
    ] {
        let count = app
            .model
            .peers
            .values()
            .filter(|p| p.dialect == dialect)
            .count();
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<14}", dialect.display_name()), theme.text),
            Span::styled(format!("{count:>6}"), theme.accent),
        ]));
    }
    lines.push(Line::from(""));
    for (label, count) in [
        ("Rooms", app.model.rooms.len()),
        ("Channels", app.model.channels.len()),
        ("Subscriptions", app.model.subscriptions.len()),
        ("Apps", app.model.apps.len()),
        ("Armed faults", app.model.faults.len()),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<16}"), theme.text),
            Span::styled(format!("{count:>6}"), theme.accent),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(block(theme, " Live ")), left);

    let [frames, errors, top] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(right);
    let frame_rates: Vec<u64> = app.rates.iter().map(|(f, _)| *f).collect();
    let error_rates: Vec<u64> = app.rates.iter().map(|(_, e)| *e).collect();
    let last = |rates: &[u64]| rates.last().copied().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(block(theme, format!(" Frames/s {} ", last(&frame_rates))))
            .data(tail(&frame_rates, frames.width.saturating_sub(2) as usize))
            .style(theme.info),
        frames,
    );
    frame.render_widget(
        Sparkline::default()
            .block(block(theme, format!(" Errors/s {} ", last(&error_rates))))
            .data(tail(&error_rates, errors.width.saturating_sub(2) as usize))
            .style(theme.error),
        errors,
    );
    let mut lines = Vec::new();
    for (qualified, count) in app.top_errors(top.height.saturating_sub(2) as usize) {
        let entry = qualified
            .split_once(':')
            .and_then(|(d, c)| d.parse().ok().map(|d| (d, c)))
            .and_then(|(d, c)| {
                catalog::get(d, c).or_else(|| c.parse().ok().and_then(|n| catalog::close(d, n)))
            });
        let style = entry
            .map(|e| theme.severity(e.severity()))
            .unwrap_or(theme.text);
        lines.push(Line::from(vec![
            Span::styled(format!("{count:>6} "), theme.accent),
            Span::styled(qualified.clone(), style),
            Span::styled(
                entry
                    .map(|e| format!("  {} · {}", e.title, e.retry.id()))
                    .unwrap_or_default(),
                theme.muted,
            ),
        ]));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("no errors yet", theme.muted)));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(theme, " Top error codes ")),
        top,
    );
}

fn tail(values: &[u64], width: usize) -> &[u64] {
    &values[values.len().saturating_sub(width)..]
}

fn draw_table(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, view: View) {
    let state = app.table_state(view);
    let visible = area.height.saturating_sub(3) as usize;
    let total = app.row_count(view);
    let selected = state.selected.min(total.saturating_sub(1));
    // Keep the selection on screen; only the rows on screen are built.
    let first = selected.saturating_sub(visible.saturating_sub(1));
    let table = app.table_window(view, first, visible);
    let rows = table.rows.iter().enumerate().map(|(offset, row)| {
        let style = if first + offset == selected {
            theme.selection
        } else {
            row.severity
                .map(|s| theme.severity(s))
                .unwrap_or(theme.text)
        };
        TableRow::new(row.cells.iter().map(|c| Cell::from(c.clone()))).style(style)
    });
    let widths = column_widths(view, table.headers.len());
    let header_cells = table.headers.iter().enumerate().map(|(index, h)| {
        let marker = match state.sort {
            Some(c) if c == index && state.descending => "▼",
            Some(c) if c == index => "▲",
            _ => "",
        };
        Cell::from(format!("{h}{marker}"))
    });
    let mut title = format!(" {} ({}) ", view.title(), table.total);
    if !state.filter.is_empty() {
        title = format!(" {} ({}) /{} ", view.title(), table.total, state.filter);
    }
    let widget = Table::new(rows, widths)
        .header(TableRow::new(header_cells).style(theme.header))
        .block(block(theme, title));
    frame.render_widget(widget, area);
}

fn column_widths(view: View, count: usize) -> Vec<Constraint> {
    let fixed: &[u16] = match view {
        View::Peers => &[6, 11, 13, 14, 7, 6, 6, 4, 21],
        View::Rooms => &[7, 12, 12, 8, 6, 10, 14],
        View::Channels => &[11, 14, 30, 8, 9],
        View::Subscriptions => &[7, 11, 20, 20, 30],
        View::Apps => &[14, 16, 10, 6, 60],
        View::Catalog => &[12, 32, 9, 23, 40],
        _ => &[],
    };
    (0..count)
        .map(|i| match fixed.get(i) {
            Some(w) if i + 1 < count => Constraint::Length(*w),
            _ => Constraint::Min(8),
        })
        .collect()
}

fn time_of(at_ms: u64) -> String {
    let seconds = (at_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// The lines for one log entry: the event, and for errors the decoded meaning and advice.
/// Indent of the lines that continue a log entry, under its event column.
const LOG_INDENT: &str = "         ";

/// The lines for one log entry: the event, and for errors the decoded title and retry policy,
/// then the guidance wrapped to `inner_width`, so that advice is never cut at the edge.
fn log_lines<'a>(
    entry: &LogEntry,
    theme: &Theme,
    width: usize,
    inner_width: usize,
) -> Vec<Line<'a>> {
    let head = vec![
        Span::styled(time_of(entry.at_ms), theme.muted),
        Span::raw(" "),
        Span::styled(
            format!("{:<6}", entry.peer.as_deref().unwrap_or("-")),
            theme.accent,
        ),
        Span::styled(
            format!("{:<12}", entry.dialect.map(|d| d.id()).unwrap_or("")),
            theme.muted,
        ),
    ];
    let decoded = entry.decoded();
    let mut lines = Vec::new();
    match &entry.kind {
        LogKind::Error {
            code,
            delivery,
            request_id,
            frame,
        } => {
            let style = decoded
                .map(|e| theme.severity(e.severity()))
                .unwrap_or(theme.error);
            let mut spans = head;
            spans.push(Span::styled(format!("✖ {code}"), style));
            spans.push(Span::styled(format!(" {}", delivery.id()), theme.muted));
            if let Some(id) = request_id {
                spans.push(Span::styled(format!(" req={id}"), theme.text));
            }
            spans.push(Span::styled(
                format!("  {}", crate::report::one_line(frame, width)),
                theme.muted,
            ));
            lines.push(Line::from(spans));
        }
        LogKind::Closed { code, reason } => {
            let severity = decoded.map(|e| e.severity()).unwrap_or(Severity::Info);
            let mut spans = head;
            let text = match code {
                Some(code) => format!("⏏ closed {code} {reason}"),
                None => format!("⏏ {reason}"),
            };
            spans.push(Span::styled(text, theme.severity(severity)));
            lines.push(Line::from(spans));
        }
        LogKind::Frame { direction, text } => {
            let mut spans = head;
            let arrow = match direction {
                Direction::In => "→",
                Direction::Out => "←",
            };
            spans.push(Span::styled(
                format!("{arrow} {}", crate::report::one_line(text, width)),
                theme.text,
            ));
            lines.push(Line::from(spans));
        }
        LogKind::Notice { text, severity } => {
            let mut spans = head;
            spans.push(Span::styled(format!("• {text}"), theme.severity(*severity)));
            lines.push(Line::from(spans));
        }
    }
    if let Some(entry) = decoded.filter(|e| e.severity() != Severity::Info) {
        lines.push(Line::from(vec![
            Span::raw(LOG_INDENT),
            Span::styled(
                format!("{} — ", entry.title),
                theme
                    .severity(entry.severity())
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("retry: {}", entry.retry.id()), theme.accent),
        ]));
        let text_width = inner_width.saturating_sub(LOG_INDENT.len()).max(20);
        for part in wrap_words(entry.guidance, text_width) {
            lines.push(Line::from(vec![
                Span::raw(LOG_INDENT),
                Span::styled(part, theme.text),
            ]));
        }
    }
    lines
}

/// Greedy word wrap to `width` characters; a word longer than a line gets a line of its own
/// and is cut by the terminal, never split mid-word here.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn draw_log(
    app: &App,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    peer: Option<&str>,
    title: &str,
) {
    let entries = app.log_entries(peer);
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(50).max(20) as usize;
    let inner_width = area.width.saturating_sub(2) as usize;
    let shown_up_to = match app.log_anchor {
        Some(anchor) => entries.partition_point(|(n, _)| *n <= anchor),
        None => entries.len(),
    };
    // Newest at the bottom: walk back from the newest shown entry until the area is full.
    let mut lines: Vec<Line> = Vec::new();
    for (_, entry) in entries[..shown_up_to].iter().rev() {
        let mut entry_lines = log_lines(entry, theme, width, inner_width);
        if lines.len() + entry_lines.len() > height {
            break;
        }
        entry_lines.append(&mut lines);
        lines = entry_lines;
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "nothing yet: errors, closes and tapped frames appear here",
            theme.muted,
        )));
    }
    let filter = app.table_state(View::Log).filter;
    let mut title = format!(" {title} ({}) ", entries.len());
    if !filter.is_empty() {
        title.push_str(&format!("/{filter} "));
    }
    let newer = entries.len() - shown_up_to;
    if app.log_anchor.is_some() {
        let live_key = app.keymap.key_for(Action::Bottom).unwrap_or(":log");
        title.push_str(&format!(
            "· PAUSED, {newer} newer · {live_key}: follow live "
        ));
    }
    // No wrapping: one entry is exactly its lines, and long frames are cut at the edge.
    frame.render_widget(Paragraph::new(lines).block(block(theme, title)), area);
}

fn draw_detail(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, detail: Detail) {
    match detail {
        Detail::Peer(id) => {
            let [head, log] =
                Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
            let text = match app.model.peer(&id) {
                Some(p) => vec![
                    Line::from(format!(
                        "{} · {} · app {} · {} · {}",
                        p.id,
                        p.dialect.display_name(),
                        p.app.as_deref().unwrap_or("none"),
                        p.identity.as_deref().unwrap_or("anonymous"),
                        p.addr
                    )),
                    Line::from(format!(
                        "frames in {} · out {} · errors {} · room {}{}",
                        p.frames_in,
                        p.frames_out,
                        p.errors,
                        p.room.as_deref().unwrap_or("—"),
                        if p.probe { " · probe" } else { "" }
                    )),
                ],
                None => vec![Line::from(Span::styled(
                    format!("{id} has disconnected; its history follows"),
                    theme.warning,
                ))],
            };
            frame.render_widget(
                Paragraph::new(text).block(block(theme, format!(" Peer {id} "))),
                head,
            );
            draw_log(
                app,
                theme,
                frame,
                log,
                Some(&id),
                "Frames and errors (t taps its frames)",
            );
        }
        Detail::Room(code) => {
            let mut lines = Vec::new();
            match app.model.rooms.get(&code) {
                Some(room) => {
                    lines.push(Line::from(format!(
                        "{} · game {} · app {} · {} · {}/{} players",
                        room.code,
                        room.game,
                        room.app,
                        room.lobby_state,
                        room.players.len(),
                        room.max_players
                    )));
                    lines.push(Line::from(Span::styled("Players", theme.header)));
                    for player in &room.players {
                        let authority = if room.authority.as_deref() == Some(&player.player_id) {
                            " ★ authority"
                        } else {
                            ""
                        };
                        let ready = if player.ready { " ready" } else { "" };
                        let peer = player.peer.as_deref().unwrap_or("disconnected");
                        lines.push(Line::from(format!(
                            "  {} ({}) {peer}{ready}{authority}",
                            player.name, player.player_id
                        )));
                    }
                    lines.push(Line::from(Span::styled("Spectators", theme.header)));
                    for spectator in &room.spectators {
                        lines.push(Line::from(format!(
                            "  {} {}",
                            spectator.name,
                            spectator.peer.as_deref().unwrap_or("")
                        )));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    format!("room {code} has closed"),
                    theme.warning,
                ))),
            }
            frame.render_widget(
                Paragraph::new(lines).block(block(theme, format!(" Room {code} "))),
                area,
            );
        }
        Detail::Channel(dialect, app_id, name) => {
            let mut lines = Vec::new();
            match app
                .model
                .channels
                .get(&(dialect, app_id.clone(), name.clone()))
            {
                Some(channel) => {
                    lines.push(Line::from(format!(
                        "{} · app {} · {} messages",
                        dialect.display_name(),
                        app_id,
                        channel.messages
                    )));
                    lines.push(Line::from(Span::styled("Members", theme.header)));
                    for member in &channel.members {
                        let identity = app
                            .model
                            .peer(member)
                            .and_then(|p| p.identity.clone())
                            .unwrap_or_default();
                        lines.push(Line::from(format!("  {member} {identity}")));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    "the channel has no members any more",
                    theme.warning,
                ))),
            }
            frame.render_widget(
                Paragraph::new(lines).block(block(theme, format!(" Channel {name} "))),
                area,
            );
        }
        Detail::Code(qualified) => {
            let entry = qualified
                .split_once(':')
                .and_then(|(d, c)| d.parse().ok().and_then(|d| catalog::get(d, c)));
            let lines = match entry {
                Some(e) => vec![
                    Line::from(Span::styled(
                        format!("{} — {}", e.qualified(), e.title),
                        theme.severity(e.severity()),
                    )),
                    Line::from(format!(
                        "{} · {} · {}",
                        e.delivery.id(),
                        e.category.id(),
                        e.status.map(|s| format!("HTTP {s}")).unwrap_or_default()
                    )),
                    Line::from(""),
                    Line::from(e.meaning),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled("Retry: ", theme.header),
                        Span::raw(format!("{} — {}", e.retry.id(), e.retry.summary())),
                    ]),
                    Line::from(vec![
                        Span::styled("Do: ", theme.header),
                        Span::raw(e.guidance),
                    ]),
                    Line::from(""),
                    Line::from(Span::styled("Example", theme.header)),
                    Line::from(e.example),
                ],
                None => vec![Line::from(qualified.clone())],
            };
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(block(theme, " Code ")),
                area,
            );
        }
    }
}

fn draw_status(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &app.mode {
        Mode::Command => Line::from(vec![
            Span::styled(":", theme.accent),
            Span::raw(app.command_line.clone()),
            Span::styled("█", theme.muted),
        ]),
        Mode::Filter => Line::from(vec![
            Span::styled("/", theme.accent),
            Span::raw(app.table_state(app.view).filter),
            Span::styled("█", theme.muted),
        ]),
        _ => match &app.status {
            Some((text, severity)) => {
                Line::from(Span::styled(text.clone(), theme.severity(*severity)))
            }
            None => Line::from(""),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The hint bar, from the live keymap, so rebound keys show as they are bound.
fn draw_hints(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if app.view == View::Composer {
        let hints = " ctrl-s send  ctrl-p pretty  ctrl-n/b template  ctrl-o :command (:target :record :fault)  esc leave";
        frame.render_widget(
            Paragraph::new(Span::styled(hints, theme.status)).style(theme.status),
            area,
        );
        return;
    }
    let mut wanted = vec![
        (Action::Help, "help"),
        (Action::Command, "cmd"),
        (Action::Filter, "filter"),
        (Action::NextView, "view"),
        (Action::Open, "open"),
        (Action::Sort, "sort"),
        (Action::Quit, "quit"),
    ];
    if app.log_shown().is_some() {
        wanted.truncate(3);
        wanted.extend([
            (Action::Up, "older"),
            (Action::Bottom, "live"),
            (Action::Quit, "quit"),
        ]);
    }
    if !app.readonly {
        match app.view {
            View::Peers => wanted.extend([(Action::Kick, "kick"), (Action::Tap, "tap")]),
            View::Apps => wanted.extend([
                (Action::SuspendApp, "suspend"),
                (Action::ActivateApp, "activate"),
            ]),
            View::Rooms => wanted.push((Action::CloseRoom, "close")),
            View::Log => wanted.push((Action::Edit, "edit")),
            _ => {}
        }
    }
    let hints: Vec<String> = wanted
        .into_iter()
        .filter_map(|(action, label)| {
            let key = app.keymap.key_for(action)?;
            Some(match key {
                "enter" => format!("⏎:{label}"),
                ":" => format!(":{label}"),
                key => format!("{key}:{label}"),
            })
        })
        .collect();
    // Tighter spacing rather than a hint cut off at the edge.
    let roomy = hints.iter().map(|h| h.chars().count() + 2).sum::<usize>() < area.width as usize;
    let separator = if roomy { "  " } else { " " };
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!(" {}", hints.join(separator)),
            theme.status,
        ))
        .style(theme.status),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_confirm(theme: &Theme, frame: &mut Frame, question: &str) {
    let area = centered(frame.area(), 64, 7);
    frame.render_widget(Clear, area);
    let lines = vec![
        Line::from(question.to_owned()),
        Line::from(""),
        Line::from(vec![
            Span::styled("[y]", theme.accent),
            Span::raw(" do it    "),
            Span::styled("[n]", theme.accent),
            Span::raw(" cancel"),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block(theme, " Confirm ").border_style(theme.warning)),
        area,
    );
}

fn draw_help(app: &App, theme: &Theme, frame: &mut Frame) {
    let area = centered(frame.area(), 76, frame.area().height.saturating_sub(2));
    frame.render_widget(Clear, area);
    let mut lines = vec![Line::from(Span::styled(
        "Keys (keymap.json in the config folder overrides them)",
        theme.header,
    ))];
    let bindings: Vec<_> = app
        .keymap
        .by_action()
        .into_iter()
        .filter(|(action, _)| !(app.readonly && action.is_admin_action()))
        .collect();
    // Two columns, so that every binding fits on an 80×24 terminal.
    let column = (area.width.saturating_sub(4) / 2) as usize;
    let describe = |(action, keys): &(crate::console::keymap::Action, Vec<String>)| {
        let keys = crate::report::one_line(&keys.join(" "), 11);
        cut(
            &format!("{keys:<12}{}", action.describe()),
            column.saturating_sub(1),
        )
    };
    for pair in bindings.chunks(2) {
        let left = describe(&pair[0]);
        let right = pair.get(1).map(describe).unwrap_or_default();
        lines.push(Line::from(Span::styled(
            format!(" {left:<column$}{right}"),
            theme.text,
        )));
    }
    lines.push(Line::from(Span::styled(
        "Commands (Tab completes)",
        theme.header,
    )));
    let mut commands = vec![":overview :peers :rooms :channels :subs :apps :log :catalog :quit"];
    if !app.readonly {
        commands.push(":kick <peer>  :tap <peer>  :untap <peer>  :close-room <code>");
        commands.push(":transfer <room> <player>  :revoke-authority <room>");
        commands.push(":compose [code]  :target probe|peer|url …  :record <name>  :fault <dialect|peer> <code> [n]");
        commands.push(":suspend <app>  :activate <app>  :revoke <app>  :expire <app>");
    }
    for command in commands {
        lines.push(Line::from(format!("  {command}")));
    }
    lines.push(Line::from(Span::styled(
        "any key closes this help",
        theme.muted,
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(theme, " Help "))
            .style(Style::default()),
        area,
    );
}

/// At most `max` characters, with an ellipsis when cut; spacing is kept.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn draw_composer(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [editor_area, answers] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Min(4)]).areas(area);
    let validity = match &app.composer.problem {
        None => Span::styled(" valid JSON ", theme.info),
        Some(problem) => Span::styled(format!(" {} ", cut(problem, 60)), theme.error),
    };
    let template = app
        .composer
        .template
        .and_then(|i| app.composer.templates.get(i))
        .map(|t| format!(" · template {} ", t.codes.join(" ")))
        .unwrap_or_default();
    let title = Line::from(Span::styled(
        format!(" Frame → {}{template}", app.composer.target.describe()),
        theme.title,
    ));
    app.composer
        .editor
        .set_block(block(theme, title).title_bottom(Line::from(validity)));
    app.composer.editor.set_cursor_line_style(Style::default());
    frame.render_widget(&app.composer.editor, editor_area);
    match (&app.composer.target, app.composer.watching.clone()) {
        (crate::console::composer::Target::Url(_), _) => {
            let width = answers.width.saturating_sub(4) as usize;
            let mut lines = Vec::new();
            for reply in &app.composer.direct_replies {
                let decoded = crate::catalog::decode::decode(reply, None)
                    .ok()
                    .and_then(|d| d.best());
                match decoded {
                    Some(entry) => {
                        lines.push(Line::from(Span::styled(
                            format!(
                                "✖ {} — {} · retry: {}",
                                entry.qualified(),
                                entry.title,
                                entry.retry.id()
                            ),
                            theme.severity(entry.severity()),
                        )));
                        lines.push(Line::from(Span::styled(
                            format!("  {}", cut(entry.guidance, width)),
                            theme.text,
                        )));
                    }
                    None => lines.push(Line::from(Span::styled(cut(reply, width), theme.text))),
                }
            }
            if lines.is_empty() {
                lines.push(Line::from(Span::styled(
                    "replies from the plain client appear here",
                    theme.muted,
                )));
            }
            frame.render_widget(
                Paragraph::new(lines).block(block(theme, " Answers ")),
                answers,
            );
        }
        (_, Some(peer)) => draw_log(
            app,
            theme,
            frame,
            answers,
            Some(&peer),
            &format!("Answers to {peer}"),
        ),
        (_, None) => frame.render_widget(
            Paragraph::new(Span::styled(
                "send with ctrl-s; the server's answers appear here, decoded",
                theme.muted,
            ))
            .block(block(theme, " Answers ")),
            answers,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::wrap_words;

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let text = "Wait for a player to leave and retry, or create a new room instead.";
        let lines = wrap_words(text, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap_words("", 10), Vec::<String>::new());
        // A word longer than the width stands alone rather than being split.
        assert_eq!(
            wrap_words("a averyveryverylongword b", 8),
            ["a", "averyveryverylongword", "b"]
        );
    }
}
