//! Ban changes. The bans live in their own store ([`crate::server::bans::BanStore`]), looked up without the hub's
//! lock; they are changed here, under it, because a new ban kicks the live peers it matches
//! and every change is a numbered delta.

use super::{Hub, State};
use crate::clock::now_ms;
use crate::protocol::admin::{BanInfo, BanTarget, Event};
use crate::server::bans::ip_of;
use crate::server::peer::Control;

impl Hub {
    /// Bans read from the data folder at start.
    pub fn restore_bans(&self, bans: Vec<BanInfo>, next_id: u64) {
        let _state = self.lock();
        self.bans.restore(bans, next_id, now_ms());
    }

    /// Put a ban in force and kick the live peers it matches; returns how many.
    pub fn add_ban(&self, ban: BanInfo) -> usize {
        let mut state = self.lock();
        let kick = Control::Kick {
            reason: Some(format!("banned: {}", ban.reason)),
        };
        let mut kicked = 0;
        for (_, peer) in state.registry.entries() {
            let matches = match &ban.target {
                BanTarget::Identity { app, identity } => {
                    peer.info.identity.as_ref() == Some(identity)
                        && (app.is_none() || peer.info.app == *app)
                }
                BanTarget::Address { ip } => {
                    ip_of(&peer.info.addr).map(|a| a.to_string()) == Some(ip.clone())
                }
            };
            if matches && peer.handle.closing().is_none() && peer.handle.control(kick.clone()) {
                kicked += 1;
            }
        }
        self.bans.insert(ban.clone());
        state.journal.record(Event::BanAdded { ban });
        kicked
    }

    pub fn lift_ban(&self, id: u64, by: &str) -> Result<BanInfo, String> {
        let mut state = self.lock();
        let ban = self
            .bans
            .remove(id)
            .ok_or_else(|| format!("no ban {id} in force"))?;
        state.journal.record(Event::BanLifted {
            id,
            by: by.to_owned(),
        });
        Ok(ban)
    }

    /// Lift the bans whose time is up (the stats tick calls this under the lock).
    pub(super) fn expire_bans(&self, state: &mut State, now: u64) {
        for ban in self.bans.expire(now) {
            state.journal.record(Event::BanLifted {
                id: ban.id,
                by: "expired".to_owned(),
            });
        }
    }
}
