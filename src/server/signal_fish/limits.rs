//! What a session may send: the frame size, the messages-per-minute window, and the
//! error-reply budget (refusals and pongs).

use tokio::time::Instant;

use super::refusal::{Carrier, Refusal};
use super::{close_reason, Session, MAX_FRAME_BYTES};
use crate::protocol::signal_fish::GameDataFormat;
use crate::server::connection::Flow;

impl Session {
    /// Charge one reply against the error-reply budget (refusals and pongs, as the real
    /// server counts them); false once it is spent, when the connection must close 4006.
    pub(super) fn charge_reply(&mut self) -> bool {
        let budget = self.hub().config().signal_fish.error_replies_per_minute;
        self.reply_window.hit(std::time::Instant::now()) <= budget
    }

    /// Answer with a refusal; when the reply budget is spent, close 4006 instead.
    pub(super) fn answer_refusal(&mut self, refusal: &Refusal) -> Flow {
        if !self.charge_reply() {
            return self.budget_spent();
        }
        self.refuse(refusal);
        Flow::Continue
    }

    pub(super) fn budget_spent(&self) -> Flow {
        self.refuse(&Refusal {
            carrier: Carrier::Error,
            code: "RATE_LIMIT_EXCEEDED",
            text: Some("Inbound error-reply rate limit exceeded".to_owned()),
        });
        Flow::close(4006, close_reason(4006))
    }

    pub(super) fn handle(&mut self, text: &str) -> Flow {
        self.last_activity = Instant::now();
        self.last_frame = self.last_activity;
        if text.len() > MAX_FRAME_BYTES {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: Some(format!(
                    "Message too large ({} bytes, max {MAX_FRAME_BYTES} bytes)",
                    text.len()
                )),
            });
        }
        if let Some(flow) = self.over_rate() {
            return flow;
        }
        let flow = self.process(text);
        self.report_activity();
        flow
    }

    /// Tell the rooms this member is active, at most once per their interval: the relay path
    /// takes no rooms lock for it.
    fn report_activity(&mut self) {
        if self.app.is_none() || self.tunnel.is_some() {
            return;
        }
        let now = Instant::now();
        let interval = self.rooms().activity_interval();
        if self.activity_reported.is_some_and(|at| now < at + interval) {
            return;
        }
        self.activity_reported = Some(now);
        self.rooms().note_activity(&self.peer.id);
    }

    /// One more message this minute: past the limit, what to do instead of handling it.
    fn over_rate(&mut self) -> Option<Flow> {
        let per_minute = self.hub().config().signal_fish.messages_per_minute;
        let now = Instant::now();
        if self.rate_window.rolled_over(now.into_std()) {
            self.warned_this_window = false;
        }
        let this_minute = self.rate_window.hit(now.into_std());
        if this_minute > per_minute.saturating_mul(2) {
            return Some(Flow::close(4006, close_reason(4006)));
        }
        if this_minute > per_minute {
            if !self.warned_this_window {
                self.warned_this_window = true;
                return Some(self.answer_refusal(&Refusal {
                    carrier: Carrier::Error,
                    code: "RATE_LIMIT_EXCEEDED",
                    text: None,
                }));
            }
            return Some(Flow::Continue);
        }
        None
    }

    /// A binary frame of an authenticated session: MessagePack game data when negotiated
    /// (0.12's frame cap on the payload), refused otherwise as 0.12 refuses it.
    pub(super) fn binary(&mut self, payload: &[u8]) -> Flow {
        if self.game_data_format != GameDataFormat::MessagePack {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "INVALID_INPUT",
                text: Some("Binary payloads are disabled for this connection".to_owned()),
            });
        }
        if payload.len() > MAX_FRAME_BYTES {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: Some(format!(
                    "Binary payload exceeded maximum size ({MAX_FRAME_BYTES} bytes)"
                )),
            });
        }
        if let Some(flow) = self.over_rate() {
            return flow;
        }
        // A cluster tunnel carries text frames only: a player whose room lives on another
        // node sends its game data as JSON.
        if self.tunnel.is_some() || self.pending.is_some() {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "INVALID_INPUT",
                text: Some(
                    "Binary game data cannot reach a room on another cluster node".to_owned(),
                ),
            });
        }
        self.report_activity();
        let relayed = self
            .rooms()
            .binary_game_data(self.hub(), &self.peer.id, payload);
        match relayed {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.answer_refusal(&refusal),
        }
    }
}
