//! Who may see and do what, decided before an upgrade.
//!
//! | credential (`Authorization: Bearer …` only) | may |
//! |---|---|
//! | the admin token | watch everything (`/admin`, Flow streams) and act (unless `--readonly`) |
//! | the viewer token | watch everything, never act |
//! | an app's secret key | Flow streams of that app's peers, rooms, channels and errors |
//!
//! Tokens never travel in a query string: URLs end up in proxy logs, shell history and
//! browser history. The viewer token is derived from the admin token (an HMAC of it), so it is
//! stable across restarts, needs no file of its own, and does not reveal the admin token.
//!
//! # Origin
//! A browser sends `Origin` with every WebSocket upgrade, and a page can open a socket to any
//! host, the operator's loopback server included. Upgrades that carry an `Origin` are refused
//! (403) on the privileged endpoints (`/admin`, Flow streams) unless the origin is in
//! `security.allowed_origins`; on the game endpoints, where browsers are real clients, they
//! are refused only when that list is set and the origin is not in it. Clients that are not
//! browsers send no `Origin` and are not affected.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::server::config::Config;

/// What a request's credential allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Admin,
    Viewer,
    /// An app's secret key: that app's data only.
    App(String),
}

impl Access {
    /// Whether this access may change anything (kick, suspend, inject, arm faults).
    pub fn may_act(&self, readonly_server: bool) -> bool {
        matches!(self, Access::Admin) && !readonly_server
    }

    /// The app whose data alone this access may see, if it is limited to one.
    pub fn app(&self) -> Option<&str> {
        match self {
            Access::App(app) => Some(app),
            Access::Admin | Access::Viewer => None,
        }
    }
}

/// The token in `Authorization: Bearer …`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

/// The read-only token that goes with an admin token.
pub fn viewer_token(admin_token: &str) -> String {
    // HMAC accepts keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(admin_token.as_bytes()) else {
        return String::new();
    };
    mac.update(b"relaydeck viewer token v1");
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("view_{hex}")
}

/// The access a request's bearer credential grants on a watching endpoint.
pub fn authorize(
    headers: &HeaderMap,
    config: &Config,
    admin_token: &str,
    allow_app_keys: bool,
) -> Option<Access> {
    let presented = bearer(headers)?;
    if token_matches(Some(presented), admin_token) {
        return Some(Access::Admin);
    }
    if token_matches(Some(presented), &viewer_token(admin_token)) {
        return Some(Access::Viewer);
    }
    if allow_app_keys {
        // Every app is compared, so the time taken does not tell which prefix matched.
        let mut granted = None;
        for app in &config.apps {
            if let Some(secret) = &app.secret_key {
                if token_matches(Some(presented), secret) && granted.is_none() {
                    granted = Some(Access::App(app.id.clone()));
                }
            }
        }
        return granted;
    }
    None
}

/// The refusal for an upgrade from a browser page that is not allowed here (see the module
/// docs), if it is one; `privileged` for the admin and Flow endpoints.
pub fn origin_refusal(headers: &HeaderMap, config: &Config, privileged: bool) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let allowed = &config.security.allowed_origins;
    let listed = allowed.iter().any(|a| a == origin || a == "*");
    if listed || (!privileged && allowed.is_empty()) {
        return None;
    }
    Some((
        StatusCode::FORBIDDEN,
        format!(
            "origin {origin:?} is not allowed here: add it to security.allowed_origins in the server's config\n"
        ),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn credentials_grant_admin_viewer_or_one_app() {
        let config = Config::demo();
        let admin = "secret-admin";
        let viewer = viewer_token(admin);
        assert_ne!(viewer, admin);
        assert_eq!(viewer, viewer_token(admin), "stable across calls");
        let with = |token: &str| headers(&[("authorization", &format!("Bearer {token}"))]);
        assert_eq!(
            authorize(&with(admin), &config, admin, true),
            Some(Access::Admin)
        );
        assert_eq!(
            authorize(&with(&viewer), &config, admin, true),
            Some(Access::Viewer)
        );
        assert_eq!(
            authorize(&with("sk_demo"), &config, admin, true),
            Some(Access::App("demo".into()))
        );
        assert_eq!(authorize(&with("sk_demo"), &config, admin, false), None);
        assert_eq!(authorize(&with("nope"), &config, admin, true), None);
        assert_eq!(authorize(&headers(&[]), &config, admin, true), None);
        assert!(Access::Admin.may_act(false));
        assert!(!Access::Admin.may_act(true));
        assert!(!Access::Viewer.may_act(false));
    }

    #[test]
    fn browser_pages_are_refused_on_privileged_endpoints_by_default() {
        let mut config = Config::demo();
        let page = headers(&[("origin", "https://evil.example")]);
        assert!(origin_refusal(&page, &config, true).is_some());
        assert!(origin_refusal(&page, &config, false).is_none());
        assert!(origin_refusal(&headers(&[]), &config, true).is_none());
        config.security.allowed_origins = vec!["https://game.example".into()];
        assert!(origin_refusal(&page, &config, false).is_some());
        let game = headers(&[("origin", "https://game.example")]);
        assert!(origin_refusal(&game, &config, true).is_none());
        assert!(origin_refusal(&game, &config, false).is_none());
    }
}
