//! The composer: the frame editor (its target and validity in the border) over the answers,
//! decoded: the watched peer's log, or the plain client's replies.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{block, cut, paragraph};
use crate::console::app::App;
use crate::console::composer::Target;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let composer = &app.composer;
    let [editor_area, answers] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Min(4)]).areas(area);
    let validity = match &composer.problem {
        None => Span::styled(" valid JSON ", theme.info),
        Some(problem) => Span::styled(format!(" {} ", cut(problem, 60)), theme.error),
    };
    let template = composer
        .template
        .and_then(|i| composer.templates.get(i))
        .map(|t| format!(" · template {} ", t.codes.join(" ")))
        .unwrap_or_default();
    let title = Line::from(Span::styled(
        format!(" Frame → {}{template}", composer.target.describe()),
        theme.title,
    ));
    // The border is drawn here rather than set on the editor, so drawing never restyles it.
    let frame_block = block(theme, title).title_bottom(Line::from(validity));
    let inner = frame_block.inner(editor_area);
    frame.render_widget(frame_block, editor_area);
    frame.render_widget(&composer.editor, inner);
    // The editor draws its text as it is, and it may hold a frame a peer sent (`e` on a log
    // line): what a terminal would obey is replaced in its cells.
    super::neutralise(frame.buffer_mut(), inner);
    match (&composer.target, composer.watching.as_deref()) {
        (Target::Url(_), _) => {
            let width = answers.width.saturating_sub(4) as usize;
            let mut lines = Vec::new();
            for reply in &composer.direct_replies {
                match reply.decoded {
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
                    None => lines.push(Line::from(Span::styled(
                        cut(&reply.text, width),
                        theme.text,
                    ))),
                }
            }
            if lines.is_empty() {
                lines.push(Line::from(Span::styled(
                    "replies from the plain client appear here",
                    theme.muted,
                )));
            }
            frame.render_widget(paragraph(lines).block(block(theme, " Answers ")), answers);
        }
        (_, Some(peer)) => super::log::draw(
            app,
            frame,
            answers,
            Some(peer),
            &format!("Answers to {peer}"),
        ),
        (_, None) if composer.session_answers.is_some() => {
            let (label, entries) = composer
                .session_answers
                .as_ref()
                .map(|(l, e)| (l.as_str(), e.as_slice()))
                .unwrap_or_default();
            super::log::draw_entries(app, frame, answers, entries, &format!("Answers to {label}"));
        }
        (_, None) => frame.render_widget(
            paragraph(Span::styled(
                "send with ctrl-s; the server's answers appear here, decoded",
                theme.muted,
            ))
            .block(block(theme, " Answers ")),
            answers,
        ),
    }
}
