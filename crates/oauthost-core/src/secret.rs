//! Secrets: generated from the operating system's CSPRNG, stored as hashes, compared in
//! constant time.
//!
//! Client secrets, authorization codes, access and refresh tokens are all [`Secret`]s of
//! 256 bits. The server keeps only their [`SecretHash`] (SHA-256): a stolen database does not
//! hold a single usable credential. Because the values carry 256 bits of entropy, a fast hash
//! is enough; passwords, which people choose, use [`crate::password`] instead.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Number of random bytes in every generated secret: 256 bits.
pub const SECRET_BYTES: usize = 32;

/// A secret value: a client secret, a code or a token.
///
/// Its `Debug` output is redacted so that it cannot leak into logs by accident; read it with
/// [`Secret::expose`] only where it must be shown (once) or sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new secret of [`SECRET_BYTES`] random bytes from the operating system's CSPRNG,
    /// encoded as 43 URL-safe base64 characters.
    ///
    /// # Panics
    ///
    /// Panics when the operating system cannot provide randomness: no secret can be made
    /// safely then, and carrying on would be worse.
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()))
    }

    /// Wraps a value chosen elsewhere (a user-chosen client secret, a token a client sent).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which this secret is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
///
/// Panics when the operating system has no randomness to give (see [`Secret::generate`]).
#[allow(clippy::expect_used)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// A random identifier of 32 bytes as 43 URL-safe characters, for public values such as
/// client identifiers, which need no hashing but must not be guessable.
pub fn random_identifier() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>())
}

/// The SHA-256 hash of a secret, as stored in the database.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes `value`.
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }

    /// Rebuilds a hash read from storage; `None` when `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `candidate` hashes to this value, compared in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        let other = Self::of(candidate);
        self.0.ct_eq(&other.0).into()
    }

    /// A short, harmless fingerprint (the first 8 hex digits of the hash) to tell stored
    /// secrets apart on screen without revealing them.
    pub fn fingerprint(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_carry_256_bits_in_url_safe_characters() {
        let secret = Secret::generate();
        assert_eq!(secret.expose().len(), 43);
        let decoded = URL_SAFE_NO_PAD.decode(secret.expose()).unwrap();
        assert_eq!(decoded.len(), 32);
        assert!(secret
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn generated_secrets_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_ne!(random_identifier(), random_identifier());
    }

    #[test]
    fn hash_matches_only_its_secret() {
        let stored = SecretHash::of("s3cret");
        assert!(stored.matches("s3cret"));
        assert!(!stored.matches("s3creT"));
        assert!(!stored.matches(""));
    }

    #[test]
    fn hash_round_trips_through_bytes() {
        let stored = SecretHash::of("value");
        assert_eq!(SecretHash::from_bytes(stored.as_bytes()), Some(stored));
        assert_eq!(SecretHash::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::new("do-not-print-me");
        assert!(!format!("{secret:?}").contains("do-not-print-me"));
        let hash = SecretHash::of("do-not-print-me");
        assert_eq!(format!("{hash:?}").len(), "SecretHash(…)".len() + 8);
    }
}
