//! Proof Key for Code Exchange (RFC 7636).

use std::{fmt, str::FromStr};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::OAuthError;

/// How a code challenge was derived from its verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChallengeMethod {
    /// `BASE64URL(SHA256(verifier))`.
    S256,
    /// The verifier itself (only where the client cannot hash).
    Plain,
}

impl CodeChallengeMethod {
    /// The method's name: `S256` or `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

impl fmt::Display for CodeChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodeChallengeMethod {
    type Err = OAuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            other => Err(OAuthError::invalid_request(format!(
                "Unsupported code_challenge_method '{}': use S256",
                other.escape_debug()
            ))),
        }
    }
}

/// Whether `value` has the shape of a verifier or challenge: 43 to 128 characters of
/// `[A-Za-z0-9-._~]` (RFC 7636 §4.1, §4.2).
fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a `code_challenge` sent to the authorization endpoint.
pub fn check_challenge(challenge: &str) -> Result<(), OAuthError> {
    if well_formed(challenge) {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ))
    }
}

/// Whether `verifier` matches `challenge` under `method`, compared in constant time.
///
/// ```
/// use oauthost_core::pkce::{verify, CodeChallengeMethod};
///
/// // The example of RFC 7636, appendix B.
/// let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// assert!(verify(verifier, challenge, CodeChallengeMethod::S256));
/// assert!(!verify(verifier, challenge, CodeChallengeMethod::Plain));
/// ```
pub fn verify(verifier: &str, challenge: &str, method: CodeChallengeMethod) -> bool {
    if !well_formed(verifier) {
        return false;
    }
    let derived = match method {
        CodeChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        CodeChallengeMethod::Plain => verifier.to_owned(),
    };
    derived.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_compares_the_verifier_itself() {
        let verifier = "a".repeat(43);
        assert!(verify(&verifier, &verifier, CodeChallengeMethod::Plain));
        assert!(!verify(
            &verifier,
            &"b".repeat(43),
            CodeChallengeMethod::Plain
        ));
    }

    #[test]
    fn malformed_verifiers_never_match() {
        let short = "a".repeat(42);
        assert!(!verify(&short, &short, CodeChallengeMethod::Plain));
        let bad = format!("{}!", "a".repeat(42));
        assert!(!verify(&bad, &bad, CodeChallengeMethod::Plain));
        assert!(check_challenge(&short).is_err());
        assert!(check_challenge(&"a".repeat(129)).is_err());
        assert!(check_challenge(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn method_names() {
        assert_eq!(
            "S256".parse::<CodeChallengeMethod>().unwrap(),
            CodeChallengeMethod::S256
        );
        assert_eq!(
            "plain".parse::<CodeChallengeMethod>().unwrap(),
            CodeChallengeMethod::Plain
        );
        assert!("s256".parse::<CodeChallengeMethod>().is_err());
    }
}
