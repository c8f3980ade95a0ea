//! Redirection endpoints a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1).
//!
//! Accepted:
//! - `https` URIs;
//! - `http` URIs whose host is a loopback address (`localhost`, `127.0.0.0/8`, `[::1]`),
//!   for native apps and development;
//! - `http` URIs to any other host only when the server runs in debug mode (the caller should
//!   warn: see [`RedirectUri::is_insecure`]);
//! - private-use schemes of native apps, named after a reversed domain (`com.example.app:/cb`).
//!
//! Refused: relative URIs, fragments, user credentials, `javascript:`, `data:`, `file:` and the
//! like, surrounding whitespace or control characters, and anything over 2,000 characters.
//!
//! ```
//! use oauthost_core::redirect::{RedirectUri, RedirectUriError};
//!
//! assert!(RedirectUri::parse("https://myapp.com/callback", false).is_ok());
//! assert!(RedirectUri::parse("http://127.0.0.1:8080/cb", false).is_ok());
//! assert!(matches!(
//!     RedirectUri::parse("http://myapp.com/", false),
//!     Err(RedirectUriError::InsecureHttp(_))
//! ));
//! let dev = RedirectUri::parse("http://myapp.com/", true)?;
//! assert!(dev.is_insecure());
//! # Ok::<(), RedirectUriError>(())
//! ```

use std::{fmt, net::IpAddr};

use url::{Host, Url};

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes that must never receive a redirect: they run code or read local data.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "ftp",
    "ws",
    "wss",
];

/// Why a redirect URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    /// Not a URI at all, or it holds whitespace or control characters.
    #[error("redirect URI {0:?} is not a valid absolute URI")]
    Malformed(String),
    /// A relative reference.
    #[error("redirect URI {0:?} must be absolute (with a scheme such as https://)")]
    Relative(String),
    /// Longer than [`MAX_REDIRECT_URI_LEN`].
    #[error("redirect URI is longer than {MAX_REDIRECT_URI_LEN} characters")]
    TooLong,
    /// Holds a fragment (`#...`), which RFC 6749 §3.1.2 forbids.
    #[error("redirect URI {0:?} must not contain a fragment (#...)")]
    Fragment(String),
    /// Holds a user name or password.
    #[error("redirect URI {0:?} must not contain user credentials")]
    Credentials(String),
    /// A scheme that may run code or read local data.
    #[error("redirect URI scheme {0:?} is not allowed")]
    ForbiddenScheme(String),
    /// `https`/`http` without a host.
    #[error("redirect URI {0:?} has no host")]
    NoHost(String),
    /// Plain `http` to a host that is not a loopback address, outside debug mode.
    #[error("redirect URI {0:?} uses plain http to a non-loopback host: use https (plain http is allowed only for localhost, or in debug mode)")]
    InsecureHttp(String),
    /// A private-use scheme that is not a reversed domain name.
    #[error("redirect URI scheme {0:?} is not allowed: use https, http to a loopback host, or a private-use scheme named after a reversed domain (e.g. com.example.app:/callback)")]
    UnknownScheme(String),
}

/// A redirect URI that passed validation. It keeps the text as registered: redirect URIs
/// are later compared as exact strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    text: String,
    insecure: bool,
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl RedirectUri {
    /// Validates `text`. With `allow_insecure_http` (debug mode), plain `http` to any host is
    /// accepted and the result reports [`is_insecure`](Self::is_insecure).
    pub fn parse(text: &str, allow_insecure_http: bool) -> Result<Self, RedirectUriError> {
        if text.len() > MAX_REDIRECT_URI_LEN {
            return Err(RedirectUriError::TooLong);
        }
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::Malformed(text.to_owned()));
        }
        let url = match Url::parse(text) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                return Err(RedirectUriError::Relative(text.to_owned()))
            }
            Err(_) => return Err(RedirectUriError::Malformed(text.to_owned())),
        };
        if url.fragment().is_some() || text.contains('#') {
            return Err(RedirectUriError::Fragment(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::Credentials(text.to_owned()));
        }
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(RedirectUriError::ForbiddenScheme(scheme.to_owned()));
        }
        let insecure = match scheme {
            "https" | "http" if url.host().is_none() => {
                return Err(RedirectUriError::NoHost(text.to_owned()))
            }
            "https" => false,
            "http" if is_loopback(url.host()) => false,
            "http" if allow_insecure_http => true,
            "http" => return Err(RedirectUriError::InsecureHttp(text.to_owned())),
            private if private.contains('.') => false,
            other => return Err(RedirectUriError::UnknownScheme(other.to_owned())),
        };
        Ok(Self {
            text: text.to_owned(),
            insecure,
        })
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is plain `http` to a non-loopback host, accepted only in debug mode.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether a redirect URI sent in a request matches a registered one: exactly, except that
/// for `http` to a loopback address the port may differ (RFC 8252 §7.3), since native apps
/// listen on whatever port is free.
///
/// ```
/// use oauthost_core::redirect::matches_registered;
///
/// assert!(matches_registered("https://myapp.com/cb", "https://myapp.com/cb"));
/// assert!(!matches_registered("https://myapp.com/cb/", "https://myapp.com/cb"));
/// assert!(matches_registered("http://127.0.0.1:51234/cb", "http://127.0.0.1/cb"));
/// assert!(!matches_registered("http://127.0.0.1:51234/other", "http://127.0.0.1/cb"));
/// ```
pub fn matches_registered(requested: &str, registered: &str) -> bool {
    if requested == registered {
        return true;
    }
    let (Ok(mut requested), Ok(mut registered)) = (Url::parse(requested), Url::parse(registered))
    else {
        return false;
    };
    let loopback = |url: &Url| {
        url.scheme() == "http"
            && matches!(url.host(), Some(Host::Ipv4(_) | Host::Ipv6(_)))
            && is_loopback(url.host())
    };
    if !loopback(&requested) || !loopback(&registered) {
        return false;
    }
    let _ = requested.set_port(None);
    let _ = registered.set_port(None);
    requested == registered
}

/// `uri` with `params` added: to its query (keeping the query it has) or, for
/// `in_fragment`, as its fragment. Every name and value is URL-encoded.
///
/// ```
/// use oauthost_core::redirect::with_params;
///
/// assert_eq!(
///     with_params("https://app.example/cb?x=1", &[("code", "a b"), ("state", "s&t")], false),
///     "https://app.example/cb?x=1&code=a+b&state=s%26t"
/// );
/// assert_eq!(
///     with_params("https://app.example/cb", &[("access_token", "t")], true),
///     "https://app.example/cb#access_token=t"
/// );
/// ```
pub fn with_params(uri: &str, params: &[(&str, &str)], in_fragment: bool) -> String {
    let Ok(mut url) = Url::parse(uri) else {
        return uri.to_owned();
    };
    if in_fragment {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(params);
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<RedirectUri, RedirectUriError> {
        RedirectUri::parse(text, false)
    }

    #[test]
    fn accepts_https_loopback_http_and_private_use_schemes() {
        for ok in [
            "https://myapp.com/",
            "https://myapp.com/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://127.8.9.1:9/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            let uri = check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(uri.as_str(), ok, "kept as registered");
            assert!(!uri.is_insecure());
        }
    }

    #[test]
    fn plain_http_to_remote_hosts_needs_debug_mode() {
        assert_eq!(
            check("http://myapp.com/"),
            Err(RedirectUriError::InsecureHttp("http://myapp.com/".into()))
        );
        let uri = RedirectUri::parse("http://myapp.com/", true).unwrap();
        assert!(uri.is_insecure());
    }

    #[test]
    fn refuses_dangerous_and_malformed_uris() {
        assert!(matches!(
            check("javascript:alert(1)"),
            Err(RedirectUriError::ForbiddenScheme(_))
        ));
        assert!(matches!(
            check("data:text/html,hi"),
            Err(RedirectUriError::ForbiddenScheme(_))
        ));
        assert!(matches!(
            check("file:///etc/passwd"),
            Err(RedirectUriError::ForbiddenScheme(_))
        ));
        assert!(matches!(
            check("JavaScript:alert(1)"),
            Err(RedirectUriError::ForbiddenScheme(_))
        ));
        assert!(matches!(
            check("/callback"),
            Err(RedirectUriError::Relative(_))
        ));
        assert!(matches!(
            check("myapp.com/cb"),
            Err(RedirectUriError::Relative(_))
        ));
        assert!(matches!(
            check("https://myapp.com/#x"),
            Err(RedirectUriError::Fragment(_))
        ));
        assert!(matches!(
            check("https://myapp.com/#"),
            Err(RedirectUriError::Fragment(_))
        ));
        assert!(matches!(
            check("https://u:p@myapp.com/"),
            Err(RedirectUriError::Credentials(_))
        ));
        assert!(matches!(
            check(" https://myapp.com/"),
            Err(RedirectUriError::Malformed(_))
        ));
        assert!(matches!(
            check("https://my app.com/"),
            Err(RedirectUriError::Malformed(_))
        ));
        assert!(matches!(check(""), Err(RedirectUriError::Malformed(_))));
        assert!(matches!(
            check("myapp:/cb"),
            Err(RedirectUriError::UnknownScheme(_))
        ));
        let long = format!("https://myapp.com/{}", "a".repeat(MAX_REDIRECT_URI_LEN));
        assert_eq!(check(&long), Err(RedirectUriError::TooLong));
    }
}
