//! Whole frames: opening a log entry in full, reading a peer's flight recorder, copying what
//! is on screen.

use super::super::app::{App, Detail, Effect, View};
use super::super::frames::{entry_text, RecordedFrames};
use crate::catalog::Severity;
use crate::protocol::admin::{Command, CommandResult};

impl App {
    /// Enter on a log (the live log or a peer's): the entry being read, in full. False when
    /// no log is on screen or it is empty.
    pub(super) fn open_log_entry(&mut self) -> bool {
        let Some(peer) = self.log_shown() else {
            return false;
        };
        let filter = self.tables.filter(View::Log);
        let Some(number) = self.log.current_number(peer, filter) else {
            return false;
        };
        let from = self.detail.take().map(Box::new);
        self.detail = Some(Detail::Entry { number, from });
        true
    }

    /// Esc from a whole frame goes back to where it was opened.
    pub(super) fn back_from_frames(&mut self) -> bool {
        match self.detail.take() {
            Some(Detail::Entry { from, .. } | Detail::Frames { from }) => {
                self.detail = from.map(|d| *d);
                true
            }
            other => {
                self.detail = other;
                false
            }
        }
    }

    /// Up and down in the recorded frames. False when they are not on screen.
    pub(super) fn move_in_recorded(&mut self, delta: isize) -> bool {
        if !matches!(self.detail, Some(Detail::Frames { .. })) {
            return false;
        }
        self.recorded.move_selection(delta);
        true
    }

    /// Ask the server for the frames its flight recorder kept of the peer on screen.
    pub(super) fn read_recorded_frames(&mut self) -> Vec<Effect> {
        let Some(subject) = self.subject() else {
            self.set_status(
                "select a peer (live, closed, or found) to read its recorded frames",
                Severity::Warning,
            );
            return Vec::new();
        };
        let effects = self.send(Command::Frames {
            peer: subject.peer.id.clone(),
        });
        if let Some(Effect::Send(envelope)) = effects.first() {
            self.frames_request = Some(envelope.id);
        }
        effects
    }

    /// The answer to [`App::read_recorded_frames`]: the frames on screen. A refusal is said
    /// on the status line like any other command's.
    pub(super) fn recorded_frames_answered(&mut self, result: &CommandResult) {
        if self.frames_request != Some(result.id) {
            return;
        }
        self.frames_request = None;
        if !result.ok {
            return;
        }
        match result.data.as_ref().map(RecordedFrames::from_result) {
            Some(Ok(recorded)) => {
                self.recorded = recorded;
                let from = self
                    .detail
                    .take()
                    .filter(|d| !matches!(d, Detail::Frames { .. }))
                    .map(Box::new);
                self.detail = Some(Detail::Frames { from });
            }
            Some(Err(problem)) => self.set_status(problem, Severity::Error),
            None => self.set_status("the server sent no frames", Severity::Error),
        }
    }

    /// Copy what is on screen: a whole log entry, the selected recorded frame, or the log
    /// entry being read.
    pub(super) fn copy_on_screen(&mut self) -> Vec<Effect> {
        let (label, text) = match &self.detail {
            Some(Detail::Entry { number, .. }) => match self.log.get(*number) {
                Some(entry) => (format!("log-{number}"), entry_text(entry)),
                None => return self.nothing_to_copy(),
            },
            Some(Detail::Frames { .. }) => match self.recorded.selected_frame() {
                Some(frame) => (
                    format!(
                        "{}-frame-{}",
                        self.recorded.peer,
                        self.recorded.selected + 1
                    ),
                    frame.text.clone(),
                ),
                None => return self.nothing_to_copy(),
            },
            _ => {
                let Some(peer) = self.log_shown() else {
                    return self.nothing_to_copy();
                };
                let filter = self.tables.filter(View::Log);
                let Some(number) = self.log.current_number(peer, filter) else {
                    return self.nothing_to_copy();
                };
                match self.log.get(number) {
                    Some(entry) => (format!("log-{number}"), entry_text(entry)),
                    None => return self.nothing_to_copy(),
                }
            }
        };
        // Numbered by the moment, so a second copy never replaces the first.
        let label = format!("{}-{label}", self.now_ms);
        vec![Effect::Copy { label, text }]
    }

    fn nothing_to_copy(&mut self) -> Vec<Effect> {
        self.set_status(
            "nothing to copy here: open a log entry (Enter) or recorded frames first",
            Severity::Warning,
        );
        Vec::new()
    }
}
