//! This node's rooms as their last update described them (rooms themselves belong to the
//! Signal Fish dialect).

use std::collections::BTreeMap;

use crate::protocol::admin::RoomInfo;

/// This node's rooms by code, as their last update described them.
#[derive(Default)]
pub(in crate::server::hub) struct Rooms {
    pub(in crate::server::hub) by_code: BTreeMap<String, RoomInfo>,
}

impl Rooms {
    pub(in crate::server::hub) fn list(&self) -> impl Iterator<Item = &RoomInfo> + Clone {
        self.by_code.values()
    }
}
