//! Apps: their statuses, their message quotas, and what this node's apps use (which the other
//! nodes of a cluster count against their limits, as this node counts theirs).

use std::collections::BTreeMap;

use crate::catalog::Dialect;
use crate::protocol::admin::{AppInfo, AppStatus, KeyInfo};
use crate::server::config::Config;

/// What a node's apps use, as it reports it to the other nodes of a cluster in its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppUsage {
    /// Live peers per app, any dialect.
    pub peers: BTreeMap<String, u64>,
    /// Live peers per `dialect/app`.
    pub dialect_peers: BTreeMap<String, u64>,
    /// Messages charged against each app's quota in the node's current period.
    pub quota: BTreeMap<String, QuotaUse>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuotaUse {
    pub period_start_ms: u64,
    pub used: u64,
}

pub(in crate::server::hub) fn dialect_app(dialect: Dialect, app: &str) -> String {
    format!("{}/{app}", dialect.id())
}

pub(in crate::server::hub) struct AppState {
    pub(in crate::server::hub) status: AppStatus,
    pub(in crate::server::hub) quota_used: u64,
    pub(in crate::server::hub) quota_period_start_ms: u64,
}

pub(in crate::server::hub) struct Apps {
    pub(in crate::server::hub) apps: BTreeMap<String, AppState>,
    /// What the other nodes of a cluster last reported their apps use, one entry per live
    /// node: connection limits and message quotas count them too.
    pub(in crate::server::hub) remote_usage: Vec<AppUsage>,
}

impl Apps {
    /// `statuses` are the persisted app statuses, which win over the config's.
    pub(in crate::server::hub) fn new(
        config: &Config,
        statuses: &BTreeMap<String, AppStatus>,
        now: u64,
    ) -> Apps {
        let apps = config
            .apps
            .iter()
            .map(|app| {
                let state = AppState {
                    status: statuses.get(&app.id).copied().unwrap_or(app.status),
                    quota_used: 0,
                    quota_period_start_ms: now,
                };
                (app.id.clone(), state)
            })
            .collect();
        Apps {
            apps,
            remote_usage: Vec::new(),
        }
    }

    pub(in crate::server::hub) fn statuses(&self) -> BTreeMap<String, AppStatus> {
        self.apps
            .iter()
            .map(|(id, app)| (id.clone(), app.status))
            .collect()
    }

    /// The apps as a snapshot lists them: the config's, with the status in force.
    pub(in crate::server::hub) fn infos(&self, config: &Config) -> Vec<AppInfo> {
        config
            .apps
            .iter()
            .map(|app| AppInfo {
                id: app.id.clone(),
                name: app.name.clone(),
                status: self
                    .apps
                    .get(&app.id)
                    .map(|a| a.status)
                    .unwrap_or(app.status),
                keys: app
                    .pubsub_keys
                    .iter()
                    .map(|key| KeyInfo {
                        id: key.id.clone(),
                        dialect: Dialect::Pubsub,
                        grants: key
                            .channel_patterns
                            .iter()
                            .cloned()
                            .chain(key.actions.iter().map(|a| a.id().to_owned()))
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Peers of `app` on the other nodes of the cluster (0 alone).
    pub(in crate::server::hub) fn remote_peers(&self, app: &str) -> usize {
        let total: u64 = self
            .remote_usage
            .iter()
            .filter_map(|usage| usage.peers.get(app))
            .sum();
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Peers of `app` in `dialect` on the other nodes of the cluster (0 alone).
    pub(in crate::server::hub) fn remote_dialect_peers(
        &self,
        dialect: Dialect,
        app: &str,
    ) -> usize {
        let key = dialect_app(dialect, app);
        let total: u64 = self
            .remote_usage
            .iter()
            .filter_map(|usage| usage.dialect_peers.get(&key))
            .sum();
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Count one message against `app`'s quota of `max_messages` per `period_secs`; false
    /// when it is exhausted.
    pub(in crate::server::hub) fn charge(
        &mut self,
        app: &str,
        max_messages: u64,
        period_secs: u64,
        now: u64,
    ) -> bool {
        let Some(entry) = self.apps.get_mut(app) else {
            return true;
        };
        if now.saturating_sub(entry.quota_period_start_ms) >= period_secs.saturating_mul(1000) {
            entry.quota_period_start_ms = now;
            entry.quota_used = 0;
        }
        let used_here = entry.quota_used;
        // Other nodes' messages in their own current periods count too; each node starts
        // its period at its first message, so the cluster's total is as fresh as a heartbeat.
        let period_ms = period_secs.saturating_mul(1000);
        let used_elsewhere: u64 = self
            .remote_usage
            .iter()
            .filter_map(|usage| usage.quota.get(app))
            .filter(|q| now.saturating_sub(q.period_start_ms) < period_ms)
            .map(|q| q.used)
            .sum();
        if used_here.saturating_add(used_elsewhere) >= max_messages {
            return false;
        }
        if let Some(entry) = self.apps.get_mut(app) {
            entry.quota_used += 1;
        }
        true
    }

    pub(in crate::server::hub) fn quota_usage(&self) -> BTreeMap<String, QuotaUse> {
        self.apps
            .iter()
            .filter(|(_, a)| a.quota_used > 0)
            .map(|(app, a)| {
                let quota = QuotaUse {
                    period_start_ms: a.quota_period_start_ms,
                    used: a.quota_used,
                };
                (app.clone(), quota)
            })
            .collect()
    }
}
