//! The hub's methods for armed faults (the list is in `parts/faults.rs`); an atomic count lets
//! requests skip the lock while nothing is armed.

use std::sync::atomic::Ordering;

use super::{Hub, State};
use crate::protocol::admin::{FaultInfo, FaultTarget};
use crate::protocol::path_fault::{PathFault, Toward};
use crate::server::peer::PeerHandle;

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
        self.take_matching(peer, |code| !PathFault::is_path_fault(code))
    }

    /// What happens to the proxied peer's next data frame going `toward`, if a path fault is
    /// armed for it that way. Free when nothing is armed.
    pub fn take_path_fault(&self, peer: &PeerHandle, toward: Toward) -> Option<PathFault> {
        self.take_matching(peer, |code| {
            code.parse::<PathFault>()
                .is_ok_and(|fault| fault.toward == toward)
        })
        .and_then(|code| code.parse().ok())
    }

    fn take_matching(&self, peer: &PeerHandle, wanted: impl Fn(&str) -> bool) -> Option<String> {
        if self.faults_armed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut state = self.lock();
        let State {
            journal, faults, ..
        } = &mut *state;
        let code = faults.take(journal, peer, wanted);
        self.faults_changed(&state);
        code
    }

    /// Path faults act on frames that `relaydeck proxy` relays; its peers take them from
    /// here on, and `arm_fault` accepts them.
    pub fn allow_path_faults(&self) {
        self.path_faults.store(true, Ordering::Relaxed);
    }

    pub fn path_faults_allowed(&self) -> bool {
        self.path_faults.load(Ordering::Relaxed)
    }
}
