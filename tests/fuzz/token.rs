//! Signed pub/sub tokens: server::token::{mint, verify}

use super::*;
use relaydeck::server::config::PubsubAction;
use relaydeck::server::token::{mint, verify, Claims, TokenError};

fn claims() -> BoxedStrategy<Claims> {
    (
        short_text(),
        short_text(),
        1u64..u64::MAX,
        optional(vec(short_text(), 0..3)),
        optional(vec(
            proptest::sample::select(PubsubAction::ALL.to_vec()),
            0..4,
        )),
    )
        .prop_map(|(sub, app, exp, channels, permissions)| Claims {
            sub,
            app,
            exp,
            channels,
            permissions,
        })
        .boxed()
}

/// Signed then verified round-trips; expiry, another secret and every single-byte
/// change (`every_byte`), or one chosen byte, are refused.
fn check(every_byte: bool) -> impl Fn((Claims, String, usize, u8)) -> Result<(), TestCaseError> {
    move |(claims, secret, position, byte)| {
        let token = mint(&secret, &claims);
        let secret_of = |_: &str| Some(secret.clone());
        prop_assert_eq!(
            verify(&token, secret_of, claims.exp - 1),
            Ok(claims.clone())
        );
        prop_assert_eq!(
            verify(&token, secret_of, claims.exp),
            Err(TokenError::Expired)
        );
        let other = format!("{secret}x");
        prop_assert_eq!(
            verify(&token, |_: &str| Some(other.clone()), 0),
            Err(TokenError::Invalid)
        );
        let positions: Vec<usize> = if every_byte {
            (0..token.len()).collect()
        } else {
            vec![position % token.len()]
        };
        for at in positions {
            let mut bytes = token.clone().into_bytes();
            // Any other ASCII byte: a token is ASCII, and the verifier takes text.
            bytes[at] = if bytes[at] == byte % 128 {
                (byte % 128) ^ 1
            } else {
                byte % 128
            };
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(
                verify(&mutated, secret_of, 0).is_err(),
                "byte {} changed still verifies: {}",
                at,
                mutated
            );
        }
        Ok(())
    }
}

/// The default run changes every byte of each token; the long run one byte per token,
/// so that its million tokens take seconds rather than hours.
fn run(cases: u32) {
    let every_byte = cases <= SHORT;
    let strategy = (claims(), "[ -~]{0,40}", any::<usize>(), any::<u8>());
    fuzz("token sign/verify", cases, strategy, check(every_byte));
    // Noise is never a valid token.
    fuzz(
        "token noise",
        cases,
        inputs(Just("e30.e30.e30".to_owned()).boxed()),
        |text| {
            prop_assert!(verify(&text, |_: &str| Some("sk".to_owned()), 0).is_err());
            Ok(())
        },
    );
}

runs!();
