//! The hub's methods for apps: statuses, quotas and usage (the data is in `parts/apps.rs`).

use std::collections::BTreeMap;

use super::parts::apps::{dialect_app, AppUsage};
use super::{Hub, State};
use crate::clock::now_ms;
use crate::protocol::admin::{AppStatus, Event};
use crate::server::peer::Control;

impl Hub {
    pub fn app_status(&self, app: &str) -> Option<AppStatus> {
        self.lock().apps.apps.get(app).map(|a| a.status)
    }

    /// Every app's status, as persisted.
    pub fn app_statuses(&self) -> BTreeMap<String, AppStatus> {
        self.lock().apps.statuses()
    }

    /// Change an app's status and tell its live peers; the caller persists first.
    pub fn set_app_status(&self, app: &str, status: AppStatus, by: &str) -> Result<usize, String> {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            apps,
            ..
        } = &mut *state;
        let Some(entry) = apps.apps.get_mut(app) else {
            return Err(format!("no app {app:?}"));
        };
        entry.status = status;
        let mut told = 0;
        for (_, peer) in registry.entries() {
            if peer.info.app.as_deref() == Some(app) {
                peer.handle.control(Control::AppStatus(status));
                told += 1;
            }
        }
        journal.record(Event::AppStatusChanged {
            app: app.to_owned(),
            status,
            by: by.to_owned(),
        });
        Ok(told)
    }

    /// Count one message against the app's quota; false when the quota is exhausted.
    pub fn charge_quota(&self, app: &str) -> bool {
        let Some(quota) = self.config.app(app).and_then(|a| a.limits.message_quota) else {
            return true;
        };
        let now = now_ms();
        self.lock()
            .apps
            .charge(app, quota.max_messages, quota.period_secs, now)
    }

    /// This node's use of its apps, for the other nodes' limits and quotas.
    pub fn app_usage(&self) -> AppUsage {
        let state = self.lock();
        AppUsage {
            peers: state
                .registry
                .per_app()
                .map(|(app, n)| (app.clone(), n as u64))
                .collect(),
            dialect_peers: state
                .registry
                .per_dialect_app()
                .map(|((dialect, app), n)| (dialect_app(*dialect, app), n as u64))
                .collect(),
            quota: state.apps.quota_usage(),
        }
    }

    /// The other live nodes' use of their apps, from their latest heartbeats.
    pub fn set_remote_usage(&self, usage: Vec<AppUsage>) {
        self.lock().apps.remote_usage = usage;
    }
}
