//! Client types and grant types (RFC 6749 §2.1, §4).

use std::{collections::BTreeSet, fmt, str::FromStr};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// A server-side application that keeps its secret confidential.
    Confidential,
    /// A browser or native application that cannot keep a secret.
    Public,
}

impl ClientType {
    /// The stored and displayed name: `confidential` or `public`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

impl fmt::Display for ClientType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown name of a client type or grant type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownName {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for ClientType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(UnknownName {
                kind: "client type",
                value: s.to_owned(),
                expected: "confidential, public",
            }),
        }
    }
}

/// A way for a client to obtain tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The authorization code grant (RFC 6749 §4.1).
    AuthorizationCode,
    /// The implicit grant, `response_type=token` (RFC 6749 §4.2).
    Implicit,
    /// The resource owner password credentials grant (RFC 6749 §4.3).
    Password,
    /// The client credentials grant (RFC 6749 §4.4).
    ClientCredentials,
    /// Refreshing an access token (RFC 6749 §6).
    RefreshToken,
}

impl GrantType {
    /// Every grant type the seed offered, in a stable order.
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::Implicit,
        Self::Password,
        Self::ClientCredentials,
        Self::RefreshToken,
    ];

    /// The name used in requests and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Implicit => "implicit",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|grant| grant.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "grant type",
                value: s.to_owned(),
                expected:
                    "authorization_code, implicit, password, client_credentials, refresh_token",
            })
    }
}

/// The grant types a client may use, stored as a space-delimited list.
///
/// ```
/// use oauthost_core::client::{GrantType, GrantTypes};
///
/// let grants: GrantTypes = "refresh_token authorization_code".parse()?;
/// assert!(grants.allows(GrantType::AuthorizationCode));
/// assert!(!grants.allows(GrantType::Password));
/// assert_eq!(grants.to_string(), "authorization_code refresh_token");
/// # Ok::<(), oauthost_core::client::UnknownName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTypes(BTreeSet<GrantType>);

impl GrantTypes {
    /// Whether `grant` is allowed.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.0.contains(&grant)
    }

    /// The allowed grant types, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = GrantType> + '_ {
        self.0.iter().copied()
    }
}

impl Default for GrantTypes {
    /// All of the seed's grant types.
    fn default() -> Self {
        GrantType::ALL.into_iter().collect()
    }
}

impl FromIterator<GrantType> for GrantTypes {
    fn from_iter<I: IntoIterator<Item = GrantType>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl FromStr for GrantTypes {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_whitespace().map(str::parse).collect()
    }
}

impl fmt::Display for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|g| g.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(grant.as_str().parse::<GrantType>().unwrap(), grant);
        }
        for kind in [ClientType::Confidential, ClientType::Public] {
            assert_eq!(kind.as_str().parse::<ClientType>().unwrap(), kind);
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = "magic".parse::<GrantType>().unwrap_err().to_string();
        assert!(
            err.contains("\"magic\"") && err.contains("client_credentials"),
            "{err}"
        );
        assert!("secret".parse::<ClientType>().is_err());
    }

    #[test]
    fn default_allows_every_seed_grant() {
        let all = GrantTypes::default();
        assert!(GrantType::ALL.iter().all(|g| all.allows(*g)));
        assert_eq!(
            all.to_string().parse::<GrantTypes>().unwrap(),
            all,
            "stored form round-trips"
        );
    }
}
