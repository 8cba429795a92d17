//! The two bottom lines: the status (or the command line and filter being typed), and the
//! key hints.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::paragraph;
use crate::console::app::{App, Mode, View};
use crate::console::keymap::Action;

pub fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let line = match &app.mode {
        Mode::Command => Line::from(vec![
            Span::styled(":", theme.accent),
            Span::raw(app.command_line.clone()),
            Span::styled("█", theme.muted),
        ]),
        Mode::Paste => Line::from(Span::styled(
            "paste or type the log; ctrl-s reads it into a timeline, esc cancels",
            theme.muted,
        )),
        Mode::Filter => Line::from(vec![
            Span::styled("/", theme.accent),
            Span::raw(app.tables.filter(app.view).to_owned()),
            Span::styled("█", theme.muted),
        ]),
        _ => match &app.status {
            Some((text, severity)) => {
                Line::from(Span::styled(text.clone(), theme.severity(*severity)))
            }
            None => Line::from(""),
        },
    };
    frame.render_widget(paragraph(line), area);
}

/// The hint bar, from the live keymap, so rebound keys show as they are bound.
pub fn draw_hints(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    if app.view == View::Composer {
        let hints = " ctrl-s send  ctrl-p pretty  ctrl-n/b template  ctrl-o :command (:target :record :fault)  esc leave";
        frame.render_widget(
            paragraph(Span::styled(hints, theme.status)).style(theme.status),
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
            (Action::Open, "whole"),
            (Action::Copy, "copy"),
            (Action::Quit, "quit"),
        ]);
    }
    if matches!(
        app.detail,
        Some(
            crate::console::app::Detail::Entry { .. } | crate::console::app::Detail::Frames { .. }
        )
    ) {
        wanted = vec![
            (Action::Copy, "copy"),
            (Action::Down, "next"),
            (Action::Back, "back"),
            (Action::Quit, "quit"),
        ];
    } else if matches!(app.view, View::Peers | View::History | View::Find) {
        wanted.push((Action::RecordedFrames, "frames"));
    }
    if !app.readonly {
        match app.view {
            View::Peers => {
                let peer = match &app.detail {
                    Some(crate::console::app::Detail::Peer(peer)) => Some(peer.clone()),
                    _ => app.selected_key(View::Peers),
                };
                let tap = if peer.is_some_and(|p| app.is_tapped(&p)) {
                    "untap"
                } else {
                    "tap"
                };
                wanted.extend([(Action::KICK, "kick"), (Action::TAP, tap)]);
            }
            View::Apps => wanted.extend([
                (Action::SUSPEND_APP, "suspend"),
                (Action::ACTIVATE_APP, "activate"),
            ]),
            View::Rooms => wanted.push((Action::CLOSE_ROOM, "close")),
            View::Log => wanted.push((Action::Edit, "edit")),
            View::Bans => wanted.push((Action::LIFT_BAN, "lift")),
            _ => {}
        }
    }
    let hint = |(action, label): (Action, &str)| {
        let key = app.keymap.key_for(&action)?;
        Some(match key {
            "enter" => format!("⏎:{label}"),
            ":" => format!(":{label}"),
            key => format!("{key}:{label}"),
        })
    };
    let mut hints: Vec<String> = wanted.into_iter().filter_map(hint).collect();
    // The triage keys, as far as the line has room for them: finding a player is most of a
    // support engineer's night.
    let triage = [
        Some(":find".to_owned()),
        hint((Action::Show(View::History), "history")),
        Some(":paste".to_owned()),
        hint((Action::Show(View::Bans), "bans")),
        hint((Action::Show(View::Nodes), "nodes")),
    ];
    for extra in triage.into_iter().flatten() {
        let used: usize = hints.iter().map(|h| h.chars().count() + 1).sum();
        if used + extra.chars().count() + 2 > area.width as usize {
            break;
        }
        hints.push(extra);
    }
    // Tighter spacing rather than a hint cut off at the edge.
    let roomy = hints
        .iter()
        .map(|h| crate::text::width(&crate::text::printable(h)) + 2)
        .sum::<usize>()
        < area.width as usize;
    let separator = if roomy { "  " } else { " " };
    frame.render_widget(
        paragraph(Span::styled(
            format!(" {}", hints.join(separator)),
            theme.status,
        ))
        .style(theme.status),
        area,
    );
}
