//! File descriptors: the connection caps only mean something below the process's limit.
//!
//! Most systems start a process with a soft `RLIMIT_NOFILE` of 1,024, far below the default
//! caps (20,000 sockets): past the limit `accept` fails with EMFILE, nobody is told 429 or
//! 503, and `/health` from anywhere times out. At start the server raises the soft limit to
//! the hard one, and lowers the caps that still do not fit, keeping [`RESERVE`] descriptors
//! for the listener, `/health`, `/admin`, the data folder's files, Redis and the refused
//! sockets being answered (at most 32 at once, see `listener`).

use crate::server::config::SecuritySettings;

/// Descriptors kept for everything but client sockets.
pub const RESERVE: usize = 128;

/// Raise the soft limit to the hard one; the soft limit in force afterwards (`None`:
/// unlimited or unknown).
pub fn raise_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit");
            }
            Err(error) => {
                tracing::warn!(%error, soft = ?limit.current, hard = ?limit.maximum, "could not raise the open-file limit");
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Lower the caps in `limits` to what `soft` descriptors allow; says so in the log.
pub fn fit(limits: &mut SecuritySettings, soft: Option<u64>) {
    let Some(soft) = soft else { return };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let room = soft.saturating_sub(RESERVE).max(1);
    if limits.max_connections > room {
        tracing::warn!(
            configured = limits.max_connections,
            lowered_to = room,
            open_file_limit = soft,
            "security.max_connections lowered to fit the open-file limit (raise `ulimit -n` to keep it)"
        );
        limits.max_connections = room;
        // One address must not be able to take every place the limit leaves: others (a
        // load balancer's /health among them) keep a quarter.
        let per_ip = (room - room / 4).max(1);
        if limits.max_connections_per_ip > per_ip {
            tracing::warn!(
                configured = limits.max_connections_per_ip,
                lowered_to = per_ip,
                "security.max_connections_per_ip lowered with it"
            );
            limits.max_connections_per_ip = per_ip;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_under_the_limit_with_a_reserve() {
        let mut limits = SecuritySettings::default();
        fit(&mut limits, Some(1_024));
        assert_eq!(limits.max_connections, 1_024 - RESERVE);
        assert!(limits.max_connections_per_ip < limits.max_connections);
        let mut roomy = SecuritySettings::default();
        fit(&mut roomy, Some(1 << 20));
        assert_eq!(roomy, SecuritySettings::default());
        fit(&mut roomy, None);
        assert_eq!(roomy, SecuritySettings::default());
    }
}
