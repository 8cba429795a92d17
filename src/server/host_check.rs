//! `Host` names a loopback-bound server answers.
//!
//! A web page the operator visits can make its own name resolve to 127.0.0.1 (DNS
//! rebinding) and then read the server's answers as same-origin: `/metrics`, `/health`, the
//! Talo and pub/sub HTTP API. The browser still sends the page's name in `Host`, so a server
//! bound to loopback answers only requests whose `Host` is a loopback name (`localhost`,
//! `*.localhost`, a loopback address) or one listed in `security.allowed_hosts`; others get
//! 403. A request without `Host` (not a browser: HTTP/1.1 requires it) is answered. A
//! server bound beyond loopback is reached by names this one cannot know, and is not
//! affected.
//!
//! Cost: one header lookup and a few string comparisons per HTTP request (a WebSocket pays
//! it once, at its upgrade).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Which `Host` names are answered.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Only loopback and listed names (the server is bound to loopback).
    pub loopback_only: bool,
    /// `security.allowed_hosts`, lower-cased, without ports.
    pub allowed: Vec<String>,
}

impl HostPolicy {
    pub fn new(listen: &str, allowed: &[String]) -> HostPolicy {
        HostPolicy {
            loopback_only: listen
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|addr| addr.ip().is_loopback()),
            allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Host` value is answered.
    pub fn allows(&self, host: &str) -> bool {
        if !self.loopback_only {
            return true;
        }
        let name = host_name(host).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || self.allowed.iter().any(|allowed| allowed == name)
    }
}

/// The name part of a `Host` value: without its port, an IPv6 literal without brackets.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

pub async fn check(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if policy.loopback_only {
        if let Some(host) = request.headers().get(header::HOST) {
            let allowed = host.to_str().is_ok_and(|host| policy.allows(host));
            if !allowed {
                return (
                    StatusCode::FORBIDDEN,
                    "this server is bound to loopback and answers loopback host names only; list other names in security.allowed_hosts\n",
                )
                    .into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_listed_ones_are_answered() {
        let policy = HostPolicy::new("127.0.0.1:7878", &["Relay.Internal".to_owned()]);
        for host in [
            "127.0.0.1:7878",
            "localhost",
            "LOCALHOST:80",
            "app.localhost:1",
            "[::1]:7878",
            "127.1.2.3",
            "relay.internal:7878",
            "localhost.",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in [
            "evil.test",
            "evil.test:7878",
            "10.0.0.1",
            "[::2]:1",
            "localhost.evil.test",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
        let open = HostPolicy::new("0.0.0.0:7878", &[]);
        assert!(open.allows("evil.test"));
    }
}
