//! Whole frames: one log entry in full, and the frames a flight recorder kept for a peer,
//! with the text a copy takes. The log and the tables cut frames to one line; a developer
//! reproducing a failure needs every byte, and a support engineer needs to paste it
//! somewhere.

use crate::protocol::admin::RecordedFrame;

use super::log::{LogEntry, LogKind};

/// The frames the server's flight recorder holds for one peer, as `frames` answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedFrames {
    pub peer: String,
    /// Where the server keeps them, when its recorder writes to disk.
    pub path: Option<String>,
    /// Oldest first.
    pub frames: Vec<RecordedFrame>,
    pub selected: usize,
}

impl RecordedFrames {
    /// Read a `frames` result's data (`{"peer":…,"path":…,"frames":[…]}`).
    ///
    /// # Errors
    /// The data is not what the admin protocol documents.
    pub fn from_result(data: &serde_json::Value) -> Result<RecordedFrames, String> {
        let peer = data
            .get("peer")
            .and_then(|p| p.as_str())
            .ok_or("the frames answer names no peer")?
            .to_owned();
        let path = data.get("path").and_then(|p| p.as_str()).map(str::to_owned);
        let frames: Vec<RecordedFrame> = match data.get("frames") {
            Some(frames) => serde_json::from_value(frames.clone())
                .map_err(|e| format!("the frames answer is not a list of frames: {e}"))?,
            None => Vec::new(),
        };
        // The newest is what a support engineer looks at first.
        let selected = frames.len().saturating_sub(1);
        Ok(RecordedFrames {
            peer,
            path,
            frames,
            selected,
        })
    }

    pub fn selected_frame(&self) -> Option<&RecordedFrame> {
        self.frames.get(self.selected)
    }

    pub fn move_selection(&mut self, delta: isize) {
        let last = self.frames.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }
}

/// What a log entry says in full: the frame as sent, a close with its reason, a notice.
pub fn entry_text(entry: &LogEntry) -> String {
    match &entry.kind {
        LogKind::Error { frame, .. } => frame.clone(),
        LogKind::Closed {
            code: Some(code),
            reason,
        } => format!("close {code} {reason}").trim_end().to_owned(),
        LogKind::Closed { code: None, reason } => reason.clone(),
        LogKind::Frame { text, .. } | LogKind::Notice { text, .. } => text.clone(),
    }
}

/// A frame laid out for reading: JSON indented, anything else as it is.
pub fn readable(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_owned())
        }
        _ => text.to_owned(),
    }
}

/// The escape sequence that puts `text` on the terminal's clipboard (OSC 52): the text is
/// base64, so nothing in it reaches the terminal as a control.
pub fn osc52(text: &str) -> String {
    use base64::Engine as _;
    format!(
        "\u{1b}]52;c;{}\u{7}",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::protocol::admin::Direction;

    #[test]
    fn a_frames_answer_is_read_with_the_newest_selected() {
        let data = serde_json::json!({
            "peer": "p7",
            "path": null,
            "frames": [
                {"at_ms": 1, "direction": "in", "text": "{\"type\":\"JoinRoom\"}"},
                {"at_ms": 2, "direction": "out", "text": "{\"type\":\"RoomJoinFailed\"}"}
            ]
        });
        let recorded = RecordedFrames::from_result(&data).unwrap();
        assert_eq!(recorded.peer, "p7");
        assert_eq!(recorded.frames.len(), 2);
        assert_eq!(recorded.selected_frame().unwrap().direction, Direction::Out);
        assert!(RecordedFrames::from_result(&serde_json::json!({"frames": 3})).is_err());
    }

    #[test]
    fn the_clipboard_sequence_carries_no_control_of_the_text() {
        let sequence = osc52("\u{1b}]2;title\u{7}");
        let body = &sequence["\u{1b}]52;c;".len()..sequence.len() - 1];
        assert!(body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
    }

    #[test]
    fn json_is_indented_and_anything_else_kept() {
        assert_eq!(readable("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(readable("close 4020"), "close 4020");
        assert_eq!(readable("42"), "42");
    }
}
