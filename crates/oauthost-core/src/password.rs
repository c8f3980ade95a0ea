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

use std::{cell::RefCell, sync::LazyLock};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use subtle::ConstantTimeEq;

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

thread_local! {
    /// The memory argon2 works in, kept by each thread that verifies passwords and reused:
    /// allocating 19 MiB per check left the allocator holding far more than the live
    /// buffers under load.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `password` matches the PHC string `stored`. A malformed `stored` never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    match verify_in_place(password, &parsed) {
        Some(matches) => matches,
        // Not a form the reusable path reads (say, another argon2 variant's output
        // length): the library's own check, which allocates.
        None => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
    }
}

/// Verifies with this thread's reusable memory; `None` when `parsed` is not argon2 with a
/// salt and an output.
fn verify_in_place(password: &str, parsed: &PasswordHash<'_>) -> Option<bool> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut output = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params.clone());
    let done = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < params.block_count() {
            memory.resize(params.block_count(), Block::default());
        }
        hasher
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut output,
                &mut memory[..params.block_count()],
            )
            .is_ok()
    });
    Some(done && bool::from(output.as_slice().ct_eq(expected.as_bytes())))
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
    fn the_reusable_check_agrees_with_the_library() {
        let stored = hash("pw").unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert_eq!(verify_in_place("pw", &parsed), Some(true));
        assert_eq!(verify_in_place("pW", &parsed), Some(false));
        // A hash made elsewhere with other parameters, checked by both paths.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(256, 3, 2, Some(16)).unwrap(),
        )
        .hash_password(b"secret", &SaltString::encode_b64(b"saltsaltsalt").unwrap())
        .unwrap()
        .to_string();
        assert!(verify("secret", &other));
        assert!(!verify("secreT", &other));
        assert!(Argon2::default()
            .verify_password(b"secret", &PasswordHash::new(&other).unwrap())
            .is_ok());
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
