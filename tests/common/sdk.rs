//! The real Signal Fish client SDK as the tests drive it: one client and its event stream,
//! where any `DecodeFailed` or `ProtocolViolation` fails the test at once. Each suite adds its
//! own ways to connect and to wait in an `impl Sdk` of its own.

use serde_json::Value;
use signal_fish_client::{PlayerId, SignalFishClient, SignalFishEvent};
use tokio::sync::mpsc::Receiver;

use super::RECEIVE_TIMEOUT;

/// One SDK client and its event stream.
pub struct Sdk {
    pub client: SignalFishClient,
    pub events: Receiver<SignalFishEvent>,
    pub label: &'static str,
}

impl Sdk {
    /// The next event; a decode failure or protocol violation fails the test at once.
    pub async fn next(&mut self) -> SignalFishEvent {
        let event = tokio::time::timeout(RECEIVE_TIMEOUT, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no event within {RECEIVE_TIMEOUT:?}", self.label))
            .unwrap_or_else(|| panic!("{}: the event stream ended", self.label));
        match &event {
            SignalFishEvent::DecodeFailed {
                message_type,
                error,
                raw_prefix,
            } => panic!(
                "{}: DecodeFailed {message_type:?}: {error}\n{raw_prefix}",
                self.label
            ),
            SignalFishEvent::ProtocolViolation { kind, diagnostic } => {
                panic!("{}: ProtocolViolation {kind:?}: {diagnostic}", self.label)
            }
            _ => event,
        }
    }

    /// Skip events until `pick` accepts one; a disconnection first fails the test.
    pub async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&SignalFishEvent) -> Option<T>,
    ) -> T {
        loop {
            let event = self.next().await;
            if let Some(found) = pick(&event) {
                return found;
            }
            if let SignalFishEvent::Disconnected { reason, .. } = &event {
                panic!(
                    "{}: disconnected ({reason:?}) while waiting for {what}",
                    self.label
                );
            }
        }
    }

    /// The next game data and who sent it.
    pub async fn game_data(&mut self) -> (PlayerId, Value) {
        self.until("GameData", |e| match e {
            SignalFishEvent::GameData {
                from_player, data, ..
            } => Some((*from_player, data.clone())),
            _ => None,
        })
        .await
    }
}
