//! The protocol rules of oauthost, kept apart from HTTP and SQL.
//!
//! This crate holds what an OAuth 2.0 authorization server must get right whatever web
//! framework or database it runs on:
//!
//! - [`scope`]: scope identifiers (RFC 6749 §3.3) and space-delimited scope lists;
//! - [`redirect`]: which redirection URIs a client may register (RFC 6749 §3.1.2, RFC 8252,
//!   RFC 9700 §2.1);
//! - [`secret`]: 256-bit secrets from the operating system's CSPRNG, stored only as SHA-256
//!   hashes and compared in constant time;
//! - [`password`]: user passwords hashed with argon2id at OWASP's parameters;
//! - [`client`]: client types and grant types;
//! - [`params`]: strict decoding of request parameters;
//! - [`pkce`]: Proof Key for Code Exchange (RFC 7636);
//! - [`error`]: the OAuth error codes;
//! - [`clock`]: the current time, passed in so that expiry can be tested without sleeping.
//!
//! ```
//! use oauthost_core::{scope::ScopeId, secret::{Secret, SecretHash}};
//!
//! let scope: ScopeId = "polls:results".parse()?;
//! assert_eq!(scope.default_title(), "Polls Results");
//!
//! let secret = Secret::generate();
//! let stored = SecretHash::of(secret.expose());
//! assert!(stored.matches(secret.expose()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod clock;
pub mod error;
pub mod params;
pub mod password;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod secret;
