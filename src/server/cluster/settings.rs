//! The `cluster` config key and what it is checked against: node ids, Redis URLs (and how one
//! is shown without its password), and the bounds on what this node keeps of the others.

use serde::{Deserialize, Serialize};

/// Node ids appear in Redis keys and peer listings.
pub const MAX_NODE_ID_BYTES: usize = 64;

/// What this node keeps of what other nodes announce. Redis is trusted, but a node (or
/// whoever writes to its Redis) must not grow another node's memory without bound; entries
/// past these are ignored, as a malformed envelope is.
pub mod limits {
    /// Envelopes larger than this are dropped unread: the largest a node sends is a batch of
    /// frames from its 64 MiB queue, or its state at 20,000 peers (a few MiB).
    pub const ENVELOPE_BYTES: usize = 80 << 20;
    /// Other nodes mirrored at once.
    pub const REMOTE_NODES: usize = 64;
    /// Other nodes' peers, in all (pub/sub directory and console mirror each).
    pub const REMOTE_PEERS: usize = 200_000;
    /// Other nodes' pub/sub channel memberships, in all.
    pub const REMOTE_MEMBERSHIPS: usize = 1_000_000;
    /// Other nodes' Signal Fish rooms, in all.
    pub const REMOTE_ROOMS: usize = 100_000;
    /// An operator's name as another node reports it (audit log, consoles).
    pub const OPERATOR_BYTES: usize = 128;
}

/// Config key `cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// `redis://host:port[/db]`; unset, the server runs alone.
    pub redis: Option<String>,
    /// This node's name, unique in the cluster (letters, digits, `-`, `_`, `.`).
    pub node_id: Option<String>,
    /// Key and channel prefix, so that several clusters can share one Redis.
    pub prefix: String,
    pub heartbeat_ms: u64,
    /// A node whose heartbeat is older than this is gone.
    pub node_timeout_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis: None,
            node_id: None,
            prefix: "relaydeck".to_owned(),
            heartbeat_ms: 1_000,
            node_timeout_ms: 5_000,
        }
    }
}

impl ClusterSettings {
    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// Checked at config load.
    pub fn check(&self) -> Result<(), String> {
        let Some(url) = &self.redis else {
            return Ok(());
        };
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "cluster.redis must be a redis:// URL, not {:?}",
                crate::text::one_line(&redact(url), 64)
            ));
        }
        match &self.node_id {
            None => return Err("cluster.node_id is required with cluster.redis".to_owned()),
            Some(id) => valid_node_id(id)?,
        }
        valid_node_id(&self.prefix).map_err(|e| format!("cluster.prefix: {e}"))?;
        if !(100..=60_000).contains(&self.heartbeat_ms) {
            return Err("cluster.heartbeat_ms must be within 100..=60000".to_owned());
        }
        if self.node_timeout_ms < 2 * self.heartbeat_ms || self.node_timeout_ms > 600_000 {
            return Err(
                "cluster.node_timeout_ms must be at least twice heartbeat_ms and at most 600000"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// A Redis client for `redis://` or `rediss://`. Over TLS it trusts the platform's roots, or
/// only the CAs given with `--ca-file` when there are any (the Redis client takes one or the
/// other).
pub(super) fn open_client(url: &str) -> redis::RedisResult<redis::Client> {
    crate::tls::install_default_provider();
    match crate::tls::extra_ca_pem() {
        Some(root_cert) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        ),
        _ => redis::Client::open(url),
    }
}

/// A Redis URL without the password it may carry (`redis://user:…@host:6379`).
pub fn redact(url: &str) -> String {
    // redis-rs also takes the password as `?password=`.
    if let Some((base, query)) = url.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=…"),
                _ => pair.to_owned(),
            })
            .collect();
        return format!("{}?{}", redact(base), query.join("&"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}")
        }
        None => url.to_owned(),
    }
}

pub fn valid_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_NODE_ID_BYTES {
        return Err(format!("must be 1 to {MAX_NODE_ID_BYTES} bytes"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may hold only letters, digits, '-', '_' and '.'".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let mut settings = ClusterSettings::default();
        assert!(settings.check().is_ok(), "no cluster is fine");
        settings.redis = Some("redis://127.0.0.1:6379".into());
        assert!(settings.check().unwrap_err().contains("node_id"));
        settings.node_id = Some("node a".into());
        assert!(settings.check().is_err());
        settings.node_id = Some("node-a".into());
        assert!(settings.check().is_ok());
        settings.node_timeout_ms = settings.heartbeat_ms;
        assert!(settings.check().is_err());
        settings.node_timeout_ms = 5_000;
        settings.redis = Some("http://127.0.0.1:6379".into());
        assert!(settings.check().is_err());
    }

    #[test]
    fn passwords_never_reach_an_error() {
        assert_eq!(
            redact("redis://app:s3cret@10.0.0.5:6379/0"),
            "redis://app:…@10.0.0.5:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://u:pw@10.0.0.5:6379/0?password=s3cret&protocol=resp3"),
            "redis://u:…@10.0.0.5:6379/0?password=…&protocol=resp3"
        );
    }
}
