//! What a session may send: the frame size, the messages-per-minute window, and the
//! error-reply budget (refusals and pongs).

use tokio::time::Instant;

use super::refusal::{Carrier, Refusal};
use super::{close_reason, Session, MAX_FRAME_BYTES};
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
        let per_minute = self.hub().config().signal_fish.messages_per_minute;
        let now = Instant::now();
        if self.rate_window.rolled_over(now.into_std()) {
            self.warned_this_window = false;
        }
        let this_minute = self.rate_window.hit(now.into_std());
        if this_minute > per_minute.saturating_mul(2) {
            return Flow::close(4006, close_reason(4006));
        }
        if this_minute > per_minute {
            if !self.warned_this_window {
                self.warned_this_window = true;
                return self.answer_refusal(&Refusal {
                    carrier: Carrier::Error,
                    code: "RATE_LIMIT_EXCEEDED",
                    text: None,
                });
            }
            return Flow::Continue;
        }
        self.process(text)
    }
}
