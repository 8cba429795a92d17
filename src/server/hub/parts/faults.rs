//! Armed faults: the code a peer's (or a dialect's) next requests fail with, or what happens
//! to the next frames on a proxied peer's path.

use super::journal::Journal;
use crate::protocol::admin::{Event, FaultInfo, FaultTarget};
use crate::server::peer::PeerHandle;

#[derive(Default)]
pub(in crate::server::hub) struct Faults {
    pub(in crate::server::hub) next_id: u64,
    pub(in crate::server::hub) armed: Vec<FaultInfo>,
}

impl Faults {
    pub(in crate::server::hub) fn list(&self) -> Vec<FaultInfo> {
        self.armed.clone()
    }

    pub(in crate::server::hub) fn arm(
        &mut self,
        journal: &mut Journal,
        target: FaultTarget,
        code: String,
        count: u32,
    ) -> FaultInfo {
        self.next_id += 1;
        let fault = FaultInfo {
            id: self.next_id,
            target,
            code,
            remaining: count,
        };
        self.armed.push(fault.clone());
        journal.record(Event::FaultArmed {
            fault: fault.clone(),
        });
        fault
    }

    pub(in crate::server::hub) fn disarm(
        &mut self,
        journal: &mut Journal,
        id: u64,
    ) -> Result<FaultInfo, String> {
        let index = self
            .armed
            .iter()
            .position(|f| f.id == id)
            .ok_or_else(|| format!("no armed fault {id}"))?;
        let mut fault = self.armed.remove(index);
        fault.remaining = 0;
        journal.record(Event::FaultUpdated {
            fault: fault.clone(),
        });
        Ok(fault)
    }

    /// Spend one use of the fault armed for `peer` whose code `wanted` accepts (a fault on
    /// the peer wins over one on its dialect) and return its code.
    pub(in crate::server::hub) fn take(
        &mut self,
        journal: &mut Journal,
        peer: &PeerHandle,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let index = self
            .armed
            .iter()
            .position(|f| {
                matches!(&f.target, FaultTarget::Peer { peer: p } if *p == peer.id)
                    && wanted(&f.code)
            })
            .or_else(|| {
                self.armed.iter().position(|f| {
                    matches!(&f.target, FaultTarget::Dialect { dialect: d } if *d == peer.dialect)
                        && wanted(&f.code)
                })
            })?;
        let fault = &mut self.armed[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let updated = fault.clone();
        if updated.remaining == 0 {
            self.armed.remove(index);
        }
        let code = updated.code.clone();
        journal.record(Event::FaultUpdated { fault: updated });
        Some(code)
    }
}
