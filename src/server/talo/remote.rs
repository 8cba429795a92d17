//! Talo between nodes: this dialect's namespace on the broker ([`crate::server::broker`],
//! namespace `talo`). A presence, channel or broadcast frame is delivered by the node that
//! sends it to its own players, and by every other node to its players in the same
//! [`Audience`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::socket::Audience;
use crate::server::broker::{Handler, Topic};
use crate::server::Shared;

/// A frame for an app's players in `audience` on every other node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub app: String,
    pub audience: Audience,
    pub text: String,
}

impl Topic for FanOut {
    const NAMESPACE: &'static str = "talo";

    fn weight(&self) -> usize {
        self.text.len()
    }
}

/// The broker's handler of the `talo` namespace.
pub struct Remote;

impl Handler for Remote {
    fn message(&self, shared: &Arc<Shared>, _from: &str, message: Value) {
        match serde_json::from_value::<FanOut>(message) {
            Ok(FanOut {
                app,
                audience,
                text,
            }) => super::socket::deliver_remote(shared, &app, &audience, text),
            Err(_) => tracing::debug!("cluster: ignoring a malformed Talo message"),
        }
    }
}
