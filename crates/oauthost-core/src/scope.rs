//! Scope identifiers and scope lists (RFC 6749 §3.3).
//!
//! A scope identifier is usually `app:view` (for example `polls:results`). It is 1 to 100
//! printable ASCII characters other than space, quotes and backslash: RFC 6749's
//! `scope-token`, less the apostrophe, so that an identifier can always be quoted in a
//! `WWW-Authenticate` header or an HTML attribute without escaping.

use std::{collections::BTreeSet, fmt, str::FromStr};

use crate::error::OAuthError;

/// Longest scope identifier accepted.
pub const MAX_SCOPE_ID_LEN: usize = 100;

/// Why a scope identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeIdError {
    /// The identifier is empty.
    #[error("a scope identifier must not be empty")]
    Empty,
    /// The identifier is longer than [`MAX_SCOPE_ID_LEN`] characters.
    #[error("scope identifier is {0} characters long; at most {MAX_SCOPE_ID_LEN} are allowed")]
    TooLong(usize),
    /// The identifier holds a character outside the allowed set.
    #[error("scope identifier {identifier:?} contains {found}, which is not allowed (use printable characters without spaces, quotes or backslashes)")]
    BadCharacter {
        /// The identifier, with control characters escaped by `Debug`.
        identifier: String,
        /// A description of the offending character.
        found: String,
    },
}

/// A valid scope identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeId(String);

impl ScopeId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A readable title built from the identifier: words split at `:`, `_`, `-` and `.`,
    /// each capitalised (`polls:results` gives "Polls Results").
    pub fn default_title(&self) -> String {
        self.0
            .split([':', '_', '-', '.'])
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '"' | '\'' => "a quote".to_owned(),
        '\\' => "a backslash".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("{c:?}"),
    }
}

impl FromStr for ScopeId {
    type Err = ScopeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ScopeIdError::Empty);
        }
        let length = s.chars().count();
        if length > MAX_SCOPE_ID_LEN {
            return Err(ScopeIdError::TooLong(length));
        }
        if let Some(bad) = s
            .chars()
            .find(|&c| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(ScopeIdError::BadCharacter {
                identifier: s.escape_debug().to_string(),
                found: describe(bad),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for ScopeId {
    type Error = ScopeIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ScopeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, written as the space-delimited list of RFC 6749 §3.3.
///
/// ```
/// use oauthost_core::scope::ScopeList;
///
/// let scopes: ScopeList = "polls:vote  polls:index polls:vote".parse()?;
/// assert_eq!(scopes.to_string(), "polls:index polls:vote");
/// # Ok::<(), oauthost_core::scope::ScopeIdError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeList(BTreeSet<ScopeId>);

impl ScopeList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the list holds no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the list.
    pub fn contains(&self, scope: &ScopeId) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `other` is in this list.
    pub fn includes(&self, other: &ScopeList) -> bool {
        other.0.is_subset(&self.0)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ScopeId> {
        self.0.iter()
    }
}

impl FromStr for ScopeList {
    type Err = ScopeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(' ')
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromIterator<ScopeId> for ScopeList {
    fn from_iter<I: IntoIterator<Item = ScopeId>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// Decides which scopes a client gets for a request, by the seed's rules.
///
/// `available` is what the client may have: its registered scopes that are enabled when it
/// is `restricted`, otherwise every enabled scope.
///
/// - A requested scope outside `available` is `invalid_scope`, naming it.
/// - No scope requested: a restricted client gets all of `available`; an unrestricted
///   client gets `invalid_scope` ("Scope must be provided for this client").
///
/// ```
/// use oauthost_core::scope::{grant, ScopeList};
///
/// let available: ScopeList = "polls:index polls:vote".parse()?;
/// let asked: ScopeList = "polls:vote".parse()?;
/// assert_eq!(grant(Some(&asked), &available, true)?.to_string(), "polls:vote");
/// assert_eq!(grant(None, &available, true)?, available);
/// assert!(grant(None, &available, false).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn grant(
    requested: Option<&ScopeList>,
    available: &ScopeList,
    restricted: bool,
) -> Result<ScopeList, OAuthError> {
    match requested {
        Some(requested) if !requested.is_empty() => {
            if let Some(missing) = requested.iter().find(|s| !available.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "Unknown or unavailable scope: {missing}"
                )));
            }
            Ok(requested.clone())
        }
        _ if restricted && !available.is_empty() => Ok(available.clone()),
        _ if restricted => Err(OAuthError::invalid_scope(
            "None of the scopes registered for this client is enabled",
        )),
        _ => Err(OAuthError::invalid_scope(
            "Scope must be provided for this client",
        )),
    }
}

/// Parses a `scope` parameter, mapping a malformed identifier to `invalid_scope`.
pub fn parse_requested(scope: Option<&str>) -> Result<Option<ScopeList>, OAuthError> {
    scope
        .map(|s| {
            s.parse::<ScopeList>()
                .map_err(|e| OAuthError::invalid_scope(e.to_string()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_identifiers() {
        for ok in [
            "polls:index",
            "my_polls:my_stats",
            "read",
            "a.b-c/d~e!#$%&()*+,;<=>?@[]^`{|}",
        ] {
            assert_eq!(ok.parse::<ScopeId>().unwrap().as_str(), ok);
        }
        assert!("x".repeat(100).parse::<ScopeId>().is_ok());
    }

    #[test]
    fn refuses_malformed_identifiers() {
        assert_eq!("".parse::<ScopeId>(), Err(ScopeIdError::Empty));
        assert_eq!(
            "x".repeat(101).parse::<ScopeId>(),
            Err(ScopeIdError::TooLong(101))
        );
        for (bad, what) in [
            ("polls index", "a space"),
            ("polls:\"x\"", "a quote"),
            ("it's", "a quote"),
            ("back\\slash", "a backslash"),
            ("tab\there", "a control character (U+0009)"),
            ("new\nline", "a control character (U+000A)"),
            ("héllo", "'é'"),
        ] {
            match bad.parse::<ScopeId>() {
                Err(ScopeIdError::BadCharacter { found, .. }) => assert_eq!(found, what, "{bad}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let message = "a\u{1b}[31m".parse::<ScopeId>().unwrap_err().to_string();
        assert!(!message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn default_title_reads_well() {
        let title = |s: &str| s.parse::<ScopeId>().unwrap().default_title();
        assert_eq!(title("polls:results"), "Polls Results");
        assert_eq!(title("my_polls:my_stats"), "My Polls My Stats");
        assert_eq!(title("read"), "Read");
    }

    #[test]
    fn scope_lists_are_sets() {
        let list: ScopeList = " b a  b ".parse().unwrap();
        assert_eq!(list.to_string(), "a b");
        let a: ScopeList = "a".parse().unwrap();
        assert!(list.includes(&a));
        assert!(!a.includes(&list));
        assert!("a \"b\"".parse::<ScopeList>().is_err());
        assert!("".parse::<ScopeList>().unwrap().is_empty());
    }

    #[test]
    fn grants_follow_the_seed_rules() {
        let available: ScopeList = "a b".parse().unwrap();
        let asked: ScopeList = "a c".parse().unwrap();
        let err = grant(Some(&asked), &available, false).unwrap_err();
        assert_eq!(err.description, "Unknown or unavailable scope: c");
        let err = grant(None, &available, false).unwrap_err();
        assert_eq!(err.description, "Scope must be provided for this client");
        assert!(grant(None, &ScopeList::new(), true).is_err());
        assert!(parse_requested(Some("a\\b")).is_err());
        assert_eq!(parse_requested(None).unwrap(), None);
    }
}
