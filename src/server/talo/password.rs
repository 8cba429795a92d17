//! Passwords of `talo`-service players, kept only as Argon2id PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). A config may give a plain `password` for
//! convenience; it is hashed with a fresh salt when the server starts and never kept.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Hash with a random 16-byte salt and Argon2id's default cost.
pub fn hash(password: &str) -> Result<String, String> {
    use rand::RngExt as _;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// A PHC string this server can verify against, or why not.
pub fn check(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "hash algorithm {} is not argon2id",
            parsed.algorithm
        ));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("the hash string has no salt or no hash".to_owned());
    }
    Ok(())
}

/// Constant-time comparison is the verifier's; a malformed stored hash verifies nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify_only_the_right_password() {
        let first = hash("demo-password").unwrap();
        let second = hash("demo-password").unwrap();
        assert_ne!(first, second);
        assert!(!first.contains("demo-password"));
        check(&first).unwrap();
        assert!(verify(&first, "demo-password"));
        assert!(verify(&second, "demo-password"));
        assert!(!verify(&first, "demo-passwore"));
        assert!(!verify(&first, ""));
    }

    #[test]
    fn the_demo_hash_is_bobs_password() {
        check(crate::server::config::DEMO_BOB_PASSWORD_HASH).unwrap();
        assert!(verify(
            crate::server::config::DEMO_BOB_PASSWORD_HASH,
            "demo-password"
        ));
    }

    #[test]
    fn malformed_hashes_are_refused_and_verify_nothing() {
        for bad in [
            "",
            "demo-password",
            "$argon2id$v=19$broken",
            "$pbkdf2-sha256$i=1$c2FsdA$aGFzaA",
        ] {
            assert!(check(bad).is_err(), "{bad}");
            assert!(!verify(bad, "demo-password"), "{bad}");
        }
    }
}
