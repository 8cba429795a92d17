//! Authenticate: the app, its status and credentials, the SDK and protocol versions, and
//! what the session learns from them.

use std::sync::Arc;

use super::operations::grants_room_operation_ids;
use super::refusal::{status_code, Carrier, Refusal, MAX_PLAYER_NAME};
use super::rooms::session_plan::Capabilities;
use super::{Session, DIALECT, MAX_OUTBOUND_MESSAGE_BYTES};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{
    Authenticate, GameDataFormat, PlayerNameRules, ProtocolInfo, ProtocolInfoV3, RateLimits,
    ServerMessage, MIN_PROTOCOL_VERSION, ROOM_OPERATION_IDS,
};
use crate::server::connection::Flow;

/// The game data formats offered, as 0.12 offers them by default.
const SUPPORTED_FORMATS: [GameDataFormat; 2] = [GameDataFormat::Json, GameDataFormat::MessagePack];

/// Semantic version as numbers; anything unparsable compares as unsupported.
pub(super) fn version(text: &str) -> Option<Vec<u64>> {
    text.trim_start_matches('v')
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

impl Session {
    /// Refuse an authentication and close the way the real server does.
    pub(super) fn refuse_authentication(&self, code: &'static str, text: Option<String>) -> Flow {
        self.refuse(&Refusal {
            carrier: Carrier::AuthenticationError,
            code,
            text,
        });
        Flow::close(1000, "unregistered")
    }

    /// Refuse an authentication but keep the connection open for another try, as the real
    /// server does for connect tokens, SDK versions and protocol versions.
    pub(super) fn refuse_and_stay(&mut self, code: &'static str, text: Option<String>) -> Flow {
        self.answer_refusal(&Refusal {
            carrier: Carrier::AuthenticationError,
            code,
            text,
        })
    }

    /// Authenticate, in signal-fish-server 0.12's order: already authenticated, app id,
    /// app status (relaydeck's addition), tokens, SDK version, protocol version, connection
    /// limit; then the game data format (`json` or `message_pack`), which never refuses: an
    /// unsupported one falls back to JSON.
    pub(super) fn authenticate(&mut self, authenticate: Authenticate) -> Flow {
        if self.app.is_some() {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "INVALID_INPUT",
                text: Some("Authenticate already completed on this connection".to_owned()),
            });
        }
        if authenticate.app_id.trim().is_empty() {
            return self
                .refuse_authentication("MISSING_APP_ID", Some("app_id is required".to_owned()));
        }
        let shared = self.shared.clone();
        let config = shared.hub.config();
        let Some((app, settings)) = config
            .app(&authenticate.app_id)
            .and_then(|a| a.signal_fish.as_ref().map(|sf| (a, sf)))
        else {
            return self.refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()));
        };
        if self.hub().bans().in_force() {
            let banned = self
                .hub()
                .peer(&self.peer.id)
                .and_then(|p| crate::server::bans::ip_of(&p.addr))
                .and_then(|ip| self.hub().bans().address(ip));
            if banned.is_some() {
                return self.refuse_authentication(
                    "UNAUTHORIZED",
                    Some("Access denied: this address is banned".to_owned()),
                );
            }
        }
        match self.hub().app_status(&app.id) {
            Some(AppStatus::Active) => {}
            Some(status) => return self.refuse_authentication(status_code(status), None),
            None => {
                return self
                    .refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()))
            }
        }
        if let Some(expected) = &settings.connect_token {
            match &authenticate.connect_token {
                None => {
                    return self.refuse_and_stay(
                        "CONNECT_TOKEN_REQUIRED",
                        Some("A connect token is required for this app".to_owned()),
                    )
                }
                Some(given) if !token_equals(given, expected) => {
                    return self.refuse_and_stay(
                        "CONNECT_TOKEN_INVALID",
                        Some("The connect token is not valid for this app".to_owned()),
                    )
                }
                Some(_) => {}
            }
        }
        if let Some(expected) = &settings.token {
            match &authenticate.token {
                None => return self.refuse_authentication("AUTHENTICATION_REQUIRED", None),
                Some(given)
                    if given.is_empty()
                        || given.len() > 256
                        || given.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    return self.refuse_authentication("INVALID_TOKEN", None)
                }
                Some(given) if !token_equals(given, expected) => {
                    return self.refuse_authentication("UNAUTHORIZED", None)
                }
                Some(_) => {}
            }
        }
        if let (Some(minimum), Some(given)) = (&settings.min_sdk_version, &authenticate.sdk_version)
        {
            let supported =
                matches!((version(given), version(minimum)), (Some(g), Some(m)) if g >= m);
            if !supported {
                return self.refuse_and_stay(
                    "SDK_VERSION_UNSUPPORTED",
                    Some(format!(
                        "SDK version `{given}` is below the minimum supported version `{minimum}`"
                    )),
                );
            }
        }
        let negotiated = authenticate.negotiated_version(self.endpoint_version);
        if negotiated < MIN_PROTOCOL_VERSION {
            return self.refuse_and_stay(
                "UNSUPPORTED_PROTOCOL_VERSION",
                Some(format!(
                    "Client protocol version {negotiated} is below the server minimum {MIN_PROTOCOL_VERSION}"
                )),
            );
        }
        let live = self.hub().app_peer_count(DIALECT, &app.id);
        if live >= app.limits.max_connections
            || self.hub().app_peers_from_address_of(&app.id, &self.peer.id)
                >= app.limits.connections_per_address()
        {
            return self.refuse_authentication("TOO_MANY_CONNECTIONS", None);
        }
        self.app = Some(app.id.clone());
        self.version = negotiated;
        self.room_operation_ids =
            grants_room_operation_ids(negotiated, authenticate.requested_capabilities.as_deref());
        self.capabilities = Arc::new(Capabilities::negotiate(
            negotiated,
            authenticate.supported_transports.clone(),
            authenticate.supported_topologies.clone(),
        ));
        let app_id = app.id.clone();
        self.hub()
            .update_peer(&self.peer.id, |p| p.app = Some(app_id));
        self.game_data_format = match authenticate.game_data_format {
            Some(format) if SUPPORTED_FORMATS.contains(&format) => format,
            Some(format) => {
                let supported: Vec<&str> = SUPPORTED_FORMATS.iter().map(|f| f.as_str()).collect();
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "UNSUPPORTED_GAME_DATA_FORMAT",
                    text: Some(format!(
                        "Requested game data format '{}' is not supported. Server supports: {}. Falling back to JSON.",
                        format.as_str(),
                        supported.join(", ")
                    )),
                });
                GameDataFormat::Json
            }
            None => GameDataFormat::Json,
        };
        let per_minute = config.signal_fish.messages_per_minute;
        let authenticated = ServerMessage::Authenticated {
            app_name: app.name.clone(),
            rate_limits: RateLimits {
                per_minute,
                // A budget set out of reach (a load test's) shows as the most a u32 holds.
                per_hour: per_minute.saturating_mul(60),
                per_day: per_minute.saturating_mul(60 * 24),
            },
        };
        self.reply(&authenticated);
        let info = ProtocolInfo {
            platform: authenticate.platform,
            sdk_version: authenticate.sdk_version,
            capabilities: ["reconnection", "spectator-mode", "rate-limits-v2"]
                .into_iter()
                .chain(self.room_operation_ids.then_some(ROOM_OPERATION_IDS))
                .map(str::to_owned)
                .collect(),
            game_data_formats: SUPPORTED_FORMATS
                .iter()
                .map(|f| f.as_str().into())
                .collect(),
            player_name_rules: PlayerNameRules {
                max_length: MAX_PLAYER_NAME,
                min_length: 1,
                allow_unicode_alphanumeric: true,
                allow_spaces: true,
                allow_leading_trailing_whitespace: false,
                allowed_symbols: vec!["-".into(), "_".into()],
            },
        };
        let info = if negotiated >= 3 {
            ServerMessage::ProtocolInfoV3(Box::new(ProtocolInfoV3::new(
                info,
                MAX_OUTBOUND_MESSAGE_BYTES,
            )))
        } else {
            ServerMessage::ProtocolInfo(info)
        };
        self.reply(&info);
        Flow::Continue
    }
}

pub(super) fn token_equals(given: &str, expected: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version("0.10.0") > version("0.9.9"));
        assert_eq!(version("v1.2.3"), Some(vec![1, 2, 3]));
        assert_eq!(version("one"), None);
    }
}
