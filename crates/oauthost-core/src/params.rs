//! Request parameters, decoded strictly (RFC 6749 §3.1, §3.2).
//!
//! A parameter sent empty counts as absent; a parameter sent twice is `invalid_request`;
//! input that is not valid UTF-8 once decoded, or a value over [`MAX_VALUE_LEN`] bytes, is
//! refused rather than guessed at.

use percent_encoding::percent_decode;

use crate::error::OAuthError;

/// Longest parameter value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;

/// Decoded `application/x-www-form-urlencoded` parameters, in order.
///
/// ```
/// use oauthost_core::params::Params;
///
/// let params = Params::parse(b"client_id=1234&state=a%26b&scope=")?;
/// assert_eq!(params.get("client_id")?, Some("1234"));
/// assert_eq!(params.get("state")?, Some("a&b"));
/// assert_eq!(params.get("scope")?, None, "empty counts as absent");
/// assert!(Params::parse(b"a=1&a=2")?.get("a").is_err(), "repeated");
/// # Ok::<(), oauthost_core::error::OAuthError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

fn decode(part: &[u8]) -> Result<String, OAuthError> {
    let spaced: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&spaced).collect();
    if bytes.contains(&0) {
        return Err(OAuthError::invalid_request(
            "Request parameters must not contain NUL characters",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| OAuthError::invalid_request("Request parameters must be UTF-8 text"))
}

impl Params {
    /// Decodes a query string or form body.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut params = Vec::new();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.len() > MAX_VALUE_LEN {
                return Err(OAuthError::invalid_request(format!(
                    "Parameter '{}' is longer than {MAX_VALUE_LEN} bytes",
                    name.escape_debug()
                )));
            }
            params.push((name, value));
        }
        Ok(Self(params))
    }

    /// The value of `name`: `None` when absent or empty, an `invalid_request` error when
    /// sent more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "Parameter '{name}' must not be repeated"
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()))
    }

    /// The value of `name`, which must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("Parameter '{name}' is required")))
    }

    /// Every non-empty value of `name`, in order: for fields that may repeat, such as a
    /// multiple select or a column of checkboxes.
    ///
    /// ```
    /// use oauthost_core::params::Params;
    ///
    /// let params = Params::parse(b"id=1&id=&id=3")?;
    /// assert_eq!(params.all("id").collect::<Vec<_>>(), ["1", "3"]);
    /// # Ok::<(), oauthost_core::error::OAuthError>(())
    /// ```
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` was sent at all (even empty).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether no parameter was sent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let params = Params::parse(b"scope=polls%3Aindex+polls%3Avote&x").unwrap();
        assert_eq!(params.get("scope").unwrap(), Some("polls:index polls:vote"));
        assert_eq!(params.get("x").unwrap(), None);
        assert!(params.contains("x"));
        assert!(!params.contains("y"));
    }

    #[test]
    fn refuses_bad_input() {
        assert!(Params::parse(b"a=%FF").is_err(), "not UTF-8 once decoded");
        assert!(Params::parse(b"client_id=mob%00ile").is_err(), "NUL");
        let long = format!("state={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
        let err = Params::parse(b"a=1&a=").unwrap().get("a").unwrap_err();
        assert_eq!(err.description, "Parameter 'a' must not be repeated");
        let err = Params::parse(b"").unwrap().require("code").unwrap_err();
        assert_eq!(err.description, "Parameter 'code' is required");
    }
}
