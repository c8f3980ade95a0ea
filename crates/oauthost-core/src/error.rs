//! OAuth 2.0 error responses (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7009 §2.2.1).

use std::fmt;

/// The `error` codes the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A parameter is missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// A code, refresh token or password is invalid, expired, revoked or misused.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The grant type is unknown.
    UnsupportedGrantType,
    /// A scope is unknown, unavailable or too wide.
    InvalidScope,
    /// The user declined.
    AccessDenied,
    /// The response type is unknown or switched off.
    UnsupportedResponseType,
    /// The server failed.
    ServerError,
    /// The server is overloaded.
    TemporarilyUnavailable,
    /// A bearer token is unknown, expired or revoked (RFC 6750).
    InvalidToken,
    /// A bearer token lacks the scope a resource needs (RFC 6750).
    InsufficientScope,
    /// The server cannot revoke this kind of token (RFC 7009).
    UnsupportedTokenType,
}

impl ErrorCode {
    /// The code as sent in the `error` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error to report to a client: a code and a readable description.
///
/// The description is shown to clients: it never holds a secret or database text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The `error` code.
    pub code: ErrorCode,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// `server_error`, with a description that reveals nothing.
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "The server failed to handle the request",
        )
    }
}
