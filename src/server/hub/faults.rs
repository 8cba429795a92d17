//! Armed faults: the code a peer's (or a dialect's) next requests fail with.

use std::sync::atomic::Ordering;

use super::{Hub, Journal, State};
use crate::protocol::admin::{Event, FaultInfo, FaultTarget};
use crate::server::peer::PeerHandle;

#[derive(Default)]
pub(super) struct Faults {
    next_id: u64,
    armed: Vec<FaultInfo>,
}

impl Faults {
    pub(super) fn list(&self) -> Vec<FaultInfo> {
        self.armed.clone()
    }

    fn arm(
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

    fn disarm(&mut self, journal: &mut Journal, id: u64) -> Result<FaultInfo, String> {
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

    /// Spend one use of the fault armed for `peer` (a fault on the peer wins over one on its
    /// dialect) and return its code.
    fn take(&mut self, journal: &mut Journal, peer: &PeerHandle) -> Option<String> {
        let index = self
            .armed
            .iter()
            .position(|f| matches!(&f.target, FaultTarget::Peer { peer: p } if *p == peer.id))
            .or_else(|| {
                self.armed.iter().position(
                    |f| matches!(&f.target, FaultTarget::Dialect { dialect: d } if *d == peer.dialect),
                )
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

impl Hub {
    fn faults_changed(&self, state: &State) {
        self.faults_armed
            .store(state.faults.armed.len(), Ordering::Relaxed);
    }

    pub fn arm_fault(&self, target: FaultTarget, code: String, count: u32) -> FaultInfo {
        let mut state = self.lock();
        let State {
            journal, faults, ..
        } = &mut *state;
        let fault = faults.arm(journal, target, code, count);
        self.faults_changed(&state);
        fault
    }

    pub fn disarm_fault(&self, id: u64) -> Result<FaultInfo, String> {
        let mut state = self.lock();
        let State {
            journal, faults, ..
        } = &mut *state;
        let fault = faults.disarm(journal, id);
        self.faults_changed(&state);
        fault
    }

    /// The code the peer's next request must fail with, if a fault is armed for it (a fault
    /// on the peer wins over one on its dialect). Free when nothing is armed.
    pub fn take_fault(&self, peer: &PeerHandle) -> Option<String> {
        if self.faults_armed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut state = self.lock();
        let State {
            journal, faults, ..
        } = &mut *state;
        let code = faults.take(journal, peer);
        self.faults_changed(&state);
        code
    }
}
