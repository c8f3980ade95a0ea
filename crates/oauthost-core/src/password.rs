//! User passwords, hashed with argon2id at OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing takes tens of milliseconds by design: callers on an async runtime run it on a
//! blocking thread.
//!
//! ```
//! use oauthost_core::password;
//!
//! let stored = password::hash("correct horse")?;
//! assert!(password::verify("correct horse", &stored));
//! assert!(!password::verify("wrong horse", &stored));
//! # Ok::<(), password::PasswordError>(())
//! ```

use std::sync::LazyLock;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

use crate::secret::random_bytes;

/// Memory cost in KiB (19 MiB), OWASP's first recommended argon2id configuration.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Number of passes over memory.
pub const ITERATIONS: u32 = 2;
/// Degree of parallelism.
pub const PARALLELISM: u32 = 1;
/// Longest password accepted, in bytes; longer input is refused rather than hashed.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password must not be empty")]
    Empty,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    /// The hashing library failed.
    #[error("could not hash the password: {0}")]
    Hashing(argon2::password_hash::Error),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| PasswordError::Hashing(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password rules: not empty, at most [`MAX_PASSWORD_BYTES`].
pub fn check_rules(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        Err(PasswordError::Empty)
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// Hashes `password` with a fresh random salt, in PHC string format.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_rules(password)?;
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(PasswordError::Hashing)?;
    let hashed = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hashing)?;
    Ok(hashed.to_string())
}

/// Whether `password` matches the PHC string `stored`. A malformed `stored` never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as [`verify`] and returns `false`: used when the user is unknown, so
/// that response times do not tell which usernames exist.
pub fn verify_nothing(password: &str) -> bool {
    static DUMMY: LazyLock<Option<String>> = LazyLock::new(|| hash("dummy password").ok());
    if let Some(dummy) = DUMMY.as_deref() {
        let _ = verify(password, dummy);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_at_owasp_parameters() {
        let stored = hash("pw").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
    }

    #[test]
    fn same_password_gets_different_salts() {
        assert_ne!(hash("pw").unwrap(), hash("pw").unwrap());
    }

    #[test]
    fn verifies_only_the_right_password() {
        let stored = hash("pw").unwrap();
        assert!(verify("pw", &stored));
        assert!(!verify("pW", &stored));
        assert!(!verify("pw", "not a phc string"));
        assert!(!verify_nothing("pw"));
    }

    #[test]
    fn refuses_empty_and_absurd_passwords() {
        assert!(matches!(hash(""), Err(PasswordError::Empty)));
        assert!(matches!(
            hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        ));
    }
}
