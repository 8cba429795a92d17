//! Signed pub/sub tokens: compact JWTs (HS256) minted by `POST /v1/tokens` with an app's secret
//! key.
//!
//! # Format
//! `base64url(header).base64url(claims).base64url(HMAC-SHA256(secret, header.claims))` with
//! claims `{"sub": peerId, "app": appId, "exp": unixSeconds, "channels": [...]?,
//! "permissions": [...]?}`. `channels` pre-subscribes the connection; `permissions` narrows
//! the key's actions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::server::config::PubsubAction;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub app: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<PubsubAction>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    #[error("the token expired")]
    Expired,
}

fn signature(secret: &str, signed_part: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(signed_part.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub fn mint(secret: &str, claims: &Claims) -> String {
    let payload = serde_json::to_string(claims).unwrap_or_default();
    let signed_part = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = URL_SAFE_NO_PAD.encode(signature(secret, &signed_part));
    format!("{signed_part}.{signature}")
}

/// Verify a token; `secret_of` finds the signing secret of the app the claims name.
pub fn verify(
    token: &str,
    secret_of: impl Fn(&str) -> Option<String>,
    now_secs: u64,
) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    let claims: Claims = serde_json::from_slice(&payload_bytes).map_err(|_| TokenError::Invalid)?;
    let secret = secret_of(&claims.app).ok_or(TokenError::Invalid)?;
    let given = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| TokenError::Invalid)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| TokenError::Invalid)?;
    mac.update(format!("{header}.{payload}").as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&given).map_err(|_| TokenError::Invalid)?;
    if claims.exp <= now_secs {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "peer-1".into(),
            app: "demo".into(),
            exp,
            channels: Some(vec!["demo/a".into()]),
            permissions: None,
        }
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let token = mint("sk", &claims(1000));
        let secret = |_: &str| Some("sk".to_owned());
        assert_eq!(verify(&token, secret, 999).unwrap(), claims(1000));
        assert_eq!(verify(&token, secret, 1000), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_and_garbage_are_invalid() {
        let token = mint("sk", &claims(1000));
        let secret = |_: &str| Some("sk".to_owned());
        assert_eq!(
            verify(&token, |_: &str| Some("other".to_owned()), 0),
            Err(TokenError::Invalid)
        );
        let forged_claims =
            URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims(u64::MAX)).unwrap());
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_claims;
        assert_eq!(
            verify(&parts.join("."), secret, 0),
            Err(TokenError::Invalid)
        );
        for garbage in ["", "a.b", "a.b.c.d", "...", "x.y.z"] {
            assert_eq!(
                verify(garbage, secret, 0),
                Err(TokenError::Invalid),
                "{garbage}"
            );
        }
    }
}
