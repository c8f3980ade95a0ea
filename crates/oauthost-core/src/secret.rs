//! Secrets: generated from the operating system's CSPRNG, stored as hashes, compared in
//! constant time.
//!
//! Client secrets, authorization codes, access and refresh tokens are all [`Secret`]s of
//! 256 bits. The server keeps only their [`SecretHash`] (SHA-256): a stolen database does not
//! hold a single usable credential. Because the values carry 256 bits of entropy, a fast hash
//! is enough; passwords, which people choose, use [`crate::password`] instead.
//!
//! Tokens and codes, written at thousands a second, are [stamped](Secret::generate_stamped):
//! they start with their issue time, and so does the key they are stored under, so the
//! database index of new keys grows at one end instead of at a random page per value.
//!
//! ```
//! use oauthost_core::secret::{Secret, SecretHash};
//!
//! let token = Secret::generate_stamped();
//! let stored = token.hash();
//! assert_eq!(stored.as_bytes().len(), 6 + 32, "issue time, then SHA-256");
//! assert!(stored.matches(token.expose()));
//! assert_eq!(SecretHash::of(token.expose()), stored, "looked up by the same key");
//! ```

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Number of random bytes in every generated secret: 256 bits.
pub const SECRET_BYTES: usize = 32;

/// Number of bytes of the time stamp that starts a [stamped](Secret::generate_stamped) secret.
pub const STAMP_BYTES: usize = 6;

/// Length of a stamped secret: 38 bytes in URL-safe base64 without padding.
const STAMPED_LEN: usize = (STAMP_BYTES + SECRET_BYTES) * 4 / 3 + 1;

/// Characters of a stamped secret that encode its stamp (6 bytes: 8 characters, no padding).
const STAMP_CHARS: usize = STAMP_BYTES * 4 / 3;

/// Length of a digest: SHA-256.
const DIGEST_BYTES: usize = 32;

/// The current time as a stamp: milliseconds since the Unix epoch, the low 48 bits,
/// big-endian (they wrap in the year 10889).
fn now_stamp() -> [u8; STAMP_BYTES] {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let bytes = (millis as u64).to_be_bytes();
    let mut stamp = [0u8; STAMP_BYTES];
    stamp.copy_from_slice(&bytes[bytes.len() - STAMP_BYTES..]);
    stamp
}

/// The stamp of `value` when it has the form of a stamped secret.
fn stamp_of(value: &str) -> Option<[u8; STAMP_BYTES]> {
    if value.len() != STAMPED_LEN {
        return None;
    }
    let mut stamp = [0u8; STAMP_BYTES];
    let written = URL_SAFE_NO_PAD
        .decode_slice(value.get(..STAMP_CHARS)?, &mut stamp)
        .ok()?;
    (written == STAMP_BYTES).then_some(stamp)
}

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

    /// A new secret of [`SECRET_BYTES`] random bytes after a [`STAMP_BYTES`]-byte stamp of
    /// the current time (milliseconds since the Unix epoch, big-endian): 51 URL-safe base64
    /// characters, of which the first 8 encode the stamp.
    ///
    /// Its [`hash`](Self::hash) starts with the same stamp, so values made one after another
    /// are stored under keys that sort one after another: a database inserts them at the end
    /// of its index, on pages already in memory and already in its log, where the keys of
    /// unstamped secrets each land on a random page. Use it for what is written at a high
    /// rate: tokens and codes. The stamp tells the holder when the value was made (as a
    /// token's `iat` does) and takes nothing from the 256 random bits.
    ///
    /// # Panics
    ///
    /// As [`Secret::generate`].
    pub fn generate_stamped() -> Self {
        let mut bytes = [0u8; STAMP_BYTES + SECRET_BYTES];
        bytes[..STAMP_BYTES].copy_from_slice(&now_stamp());
        bytes[STAMP_BYTES..].copy_from_slice(&random_bytes::<SECRET_BYTES>());
        Self(URL_SAFE_NO_PAD.encode(bytes))
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

/// A [`random_identifier`] after a time stamp, as [`Secret::generate_stamped`] makes them: for
/// identifiers made at a high rate and indexed, such as a refresh token's family, whose index
/// then grows at one end.
pub fn stamped_identifier() -> String {
    Secret::generate_stamped().0
}

/// The key under which a secret is stored: its SHA-256 digest, after the stamp of a
/// [stamped](Secret::generate_stamped) secret.
///
/// The stamp is not secret (it is the start of the value); the digest is what no one can
/// work back from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash {
    bytes: [u8; STAMP_BYTES + DIGEST_BYTES],
    len: u8,
}

impl SecretHash {
    /// The key of `value`: `stamp ‖ SHA-256(value)` when `value` has the form of a stamped
    /// secret, `SHA-256(value)` otherwise.
    pub fn of(value: &str) -> Self {
        let mut bytes = [0u8; STAMP_BYTES + DIGEST_BYTES];
        let start = match stamp_of(value) {
            Some(stamp) => {
                bytes[..STAMP_BYTES].copy_from_slice(&stamp);
                STAMP_BYTES
            }
            None => 0,
        };
        let end = start + DIGEST_BYTES;
        bytes[start..end].copy_from_slice(&Sha256::digest(value.as_bytes()));
        Self {
            bytes,
            len: end as u8,
        }
    }

    /// Rebuilds a key read from storage; `None` unless `bytes` is 32 bytes long (a digest) or
    /// 38 (a stamp and a digest).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != DIGEST_BYTES && bytes.len() != STAMP_BYTES + DIGEST_BYTES {
            return None;
        }
        let mut stored = [0u8; STAMP_BYTES + DIGEST_BYTES];
        stored[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            bytes: stored,
            len: bytes.len() as u8,
        })
    }

    /// The key's bytes, as stored: 32, or 38 for a stamped secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The digest part of the key.
    fn digest(&self) -> &[u8] {
        &self.as_bytes()[usize::from(self.len) - DIGEST_BYTES..]
    }

    /// Whether `candidate` is the secret stored under this key: its SHA-256 digest is the
    /// key's, compared in constant time. The digest covers the whole value, stamp included,
    /// so the stamp need not be compared; and a key stored as a bare digest (a client secret
    /// of 51 characters set before stamps existed) still matches its secret.
    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; DIGEST_BYTES] = Sha256::digest(candidate.as_bytes()).into();
        self.digest().ct_eq(&digest).into()
    }

    /// A short, harmless fingerprint (the first 8 hex digits of the digest) to tell stored
    /// secrets apart on screen without revealing them.
    pub fn fingerprint(&self) -> String {
        self.digest()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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
    fn stamped_secrets_carry_256_random_bits_after_the_time() {
        let before = now_stamp();
        let secret = Secret::generate_stamped();
        assert_eq!(secret.expose().len(), STAMPED_LEN);
        let decoded = URL_SAFE_NO_PAD.decode(secret.expose()).unwrap();
        assert_eq!(decoded.len(), STAMP_BYTES + SECRET_BYTES);
        assert!(decoded[..STAMP_BYTES] >= before[..] && decoded[..STAMP_BYTES] <= now_stamp()[..]);
        assert_ne!(
            Secret::generate_stamped().expose()[STAMP_CHARS..],
            secret.expose()[STAMP_CHARS..]
        );
    }

    #[test]
    fn keys_of_stamped_secrets_sort_by_issue_time() {
        let first = Secret::generate_stamped().hash();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let keys: Vec<SecretHash> = (0..50).map(|_| Secret::generate_stamped().hash()).collect();
        for key in &keys {
            assert!(key.as_bytes() > first.as_bytes());
            assert_eq!(key.as_bytes().len(), STAMP_BYTES + DIGEST_BYTES);
        }
        let secret = Secret::generate_stamped();
        let key = secret.hash();
        assert_eq!(
            &key.as_bytes()[STAMP_BYTES..],
            &Sha256::digest(secret.expose())[..]
        );
        assert_eq!(
            &key.as_bytes()[..STAMP_BYTES],
            &URL_SAFE_NO_PAD.decode(secret.expose()).unwrap()[..STAMP_BYTES]
        );
    }

    #[test]
    fn a_stamped_key_matches_only_its_secret() {
        let secret = Secret::generate_stamped();
        let stored = secret.hash();
        assert!(stored.matches(secret.expose()));
        let last = if secret.expose().ends_with('A') {
            "Q"
        } else {
            "A"
        };
        let mut altered = secret.expose().to_owned();
        altered.replace_range(STAMPED_LEN - 1.., last);
        assert!(!stored.matches(&altered));
        // The same digest without the stamp is another key (lookups by key tell them apart),
        // but a secret whose bare digest was stored still matches it.
        let unstamped = SecretHash::from_bytes(&stored.as_bytes()[STAMP_BYTES..]).unwrap();
        assert_ne!(unstamped, stored);
        assert!(unstamped.matches(secret.expose()));
        assert!(!unstamped.matches(&altered));
        assert_eq!(stored.fingerprint(), unstamped.fingerprint());
    }

    #[test]
    fn hash_round_trips_through_bytes() {
        let stored = SecretHash::of("value");
        assert_eq!(SecretHash::from_bytes(stored.as_bytes()), Some(stored));
        assert_eq!(SecretHash::from_bytes(&[1, 2, 3]), None);
        let stamped = Secret::generate_stamped().hash();
        assert_eq!(SecretHash::from_bytes(stamped.as_bytes()), Some(stamped));
        assert_eq!(SecretHash::from_bytes(&[0; 33]), None);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::new("do-not-print-me");
        assert!(!format!("{secret:?}").contains("do-not-print-me"));
        let hash = SecretHash::of("do-not-print-me");
        assert_eq!(format!("{hash:?}").len(), "SecretHash(…)".len() + 8);
    }
}
