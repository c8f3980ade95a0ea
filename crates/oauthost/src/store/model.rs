//! The records the store reads and writes.

use oauthost_core::{
    client::{ClientType, GrantTypes},
    error::OAuthError,
    redirect::RedirectUri,
    scope::{ScopeId, ScopeList},
    secret::SecretHash,
};
use time::OffsetDateTime;

/// A person who can log in, own clients and grant access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Database key.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Whether the user may use the admin site.
    pub is_staff: bool,
    /// Inactive users can neither log in nor use their tokens.
    pub is_active: bool,
    /// When the user was created.
    pub created_at: OffsetDateTime,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// The argon2id PHC string, or `None` for a user whose password another system checks.
    pub password_hash: Option<String>,
    /// Whether the user may use the admin site.
    pub is_staff: bool,
    /// Whether the user may log in.
    pub is_active: bool,
}

/// A permission a client can be granted, usually named `app:view`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Database key.
    pub id: i64,
    /// Unique identifier, as clients ask for it.
    pub identifier: ScopeId,
    /// Readable title shown on the consent page.
    pub title: String,
    /// Disabled scopes cannot be granted.
    pub enabled: bool,
}

/// A scope to create.
#[derive(Debug, Clone)]
pub struct NewScope {
    /// Unique identifier.
    pub identifier: ScopeId,
    /// Readable title.
    pub title: String,
    /// Whether it can be granted.
    pub enabled: bool,
}

/// An application registered to obtain tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Database key.
    pub id: i64,
    /// The public `client_id`.
    pub identifier: String,
    /// Unique title shown to users.
    pub title: String,
    /// Hash of the client secret, for clients that have one.
    pub secret_hash: Option<SecretHash>,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Database key of the user who registered the client.
    pub registrant_id: i64,
    /// Free text.
    pub description: String,
    /// The client's home page, if given.
    pub link: Option<String>,
    /// Lifetime of the access tokens it gets, in seconds.
    pub token_lifetime: i64,
    /// Whether the client accepts a `#` fragment in a `Location` header.
    pub hash_sign_supported: bool,
    /// The grants it may use.
    pub grant_types: GrantTypes,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

/// A client to register, with its redirect endpoints and scope restriction.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The public `client_id`.
    pub identifier: String,
    /// Unique title.
    pub title: String,
    /// Hash of its secret, if it has one.
    pub secret_hash: Option<SecretHash>,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Database key of the registering user.
    pub registrant_id: i64,
    /// Free text.
    pub description: String,
    /// Home page.
    pub link: Option<String>,
    /// Access token lifetime in seconds (positive).
    pub token_lifetime: i64,
    /// Whether it accepts `#` in a `Location` header.
    pub hash_sign_supported: bool,
    /// The grants it may use.
    pub grant_types: GrantTypes,
    /// Its redirection endpoints.
    pub redirect_uris: Vec<RedirectUri>,
    /// The scopes it is restricted to; empty means every enabled scope.
    pub scopes: Vec<ScopeId>,
    /// Whether scopes of `scopes` that do not exist yet are created (enabled, with a default
    /// title) or make the registration fail.
    pub register_unknown_scopes: bool,
}

/// A client with the username of its registrant, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    /// The client.
    pub client: Client,
    /// Username of its registrant.
    pub registrant: String,
}

/// An authorization code waiting to be exchanged for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// Database key.
    pub id: i64,
    /// Hash of the code.
    pub code_hash: SecretHash,
    /// Database key of the client it was issued to.
    pub client_id: i64,
    /// Database key of the user who approved it.
    pub user_id: i64,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token request
    /// must repeat it).
    pub redirect_uri_explicit: bool,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// PKCE code challenge (RFC 7636), if one was sent.
    pub code_challenge: Option<String>,
    /// PKCE method, `S256` or `plain`.
    pub code_challenge_method: Option<String>,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// Whether it has been exchanged already.
    pub consumed: bool,
}

/// An authorization code to store.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    /// Hash of the code.
    pub code_hash: SecretHash,
    /// Database key of the client.
    pub client_id: i64,
    /// Database key of the user.
    pub user_id: i64,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// Whether the request named it.
    pub redirect_uri_explicit: bool,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// PKCE code challenge.
    pub code_challenge: Option<String>,
    /// PKCE method.
    pub code_challenge_method: Option<String>,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry time.
    pub expires_at: OffsetDateTime,
}

/// What happened when a code was presented for exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeExchange {
    /// The code was unused and passed the check: it is consumed and this token issued for
    /// it, in one transaction.
    Issued(Token),
    /// The code was unused but failed the check: it is consumed, and no token issued.
    Refused(OAuthError),
    /// The code had been consumed before: a replay.
    AlreadyUsed(AuthorizationCode),
    /// No such code for this client.
    Unknown,
}

/// The check [`CodeStore::exchange_code`](super::CodeStore::exchange_code) runs on the code it consumes: the token to issue,
/// or why not.
pub type CodeCheck<'a> =
    &'a (dyn Fn(&AuthorizationCode) -> Result<NewToken, OAuthError> + Send + Sync);

/// An access token, with its refresh token if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Database key.
    pub id: i64,
    /// Hash of the access token.
    pub access_token_hash: SecretHash,
    /// Hash of the refresh token.
    pub refresh_token_hash: Option<SecretHash>,
    /// The user on whose behalf the client acts, if any.
    pub user_id: Option<i64>,
    /// Database key of the client.
    pub client_id: i64,
    /// The authorization code it was issued for, if any.
    pub code_id: Option<i64>,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry of the access token.
    pub expires_at: OffsetDateTime,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Identifier shared by every token of one refresh chain.
    pub refresh_family: Option<String>,
    /// Whether its refresh token has been exchanged for a newer one.
    pub refresh_rotated: bool,
}

/// A token with what checking it needs: its client's identifier and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDetails {
    /// The token.
    pub token: Token,
    /// The public identifier of its client.
    pub client_identifier: String,
    /// Its user's username, if it has a user.
    pub username: Option<String>,
    /// Whether its user is active (`true` for a token without a user, `false` for one whose
    /// user no longer exists).
    pub user_active: bool,
}

impl Token {
    /// The token type; oauthost issues bearer tokens only (RFC 6750).
    pub const TOKEN_TYPE: &'static str = "bearer";
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Hash of the access token.
    pub access_token_hash: SecretHash,
    /// Hash of the refresh token.
    pub refresh_token_hash: Option<SecretHash>,
    /// The user, if any.
    pub user_id: Option<i64>,
    /// Database key of the client.
    pub client_id: i64,
    /// The authorization code it comes from.
    pub code_id: Option<i64>,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry time.
    pub expires_at: OffsetDateTime,
    /// Refresh chain identifier.
    pub refresh_family: Option<String>,
}

impl NewToken {
    /// The token as the database keeps it once inserted under `id`: times to the whole
    /// second, neither revoked nor rotated.
    pub(crate) fn stored(&self, id: i64) -> Token {
        let second = |time: OffsetDateTime| {
            OffsetDateTime::from_unix_timestamp(time.unix_timestamp()).unwrap_or(time)
        };
        Token {
            id,
            access_token_hash: self.access_token_hash,
            refresh_token_hash: self.refresh_token_hash,
            user_id: self.user_id,
            client_id: self.client_id,
            code_id: self.code_id,
            scopes: self.scopes.clone(),
            issued_at: second(self.issued_at),
            expires_at: second(self.expires_at),
            revoked: false,
            refresh_family: self.refresh_family.clone(),
            refresh_rotated: false,
        }
    }
}

/// A server-side session of the login and consent pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hash of the session identifier carried by the cookie.
    pub id_hash: SecretHash,
    /// The session's data, serialized by its owner.
    pub data: Vec<u8>,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// One database migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its version number.
    pub version: i64,
    /// What it does.
    pub description: String,
}

/// How many rows a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired authorization codes.
    pub codes: u64,
    /// Tokens that can no longer be used: expired access tokens without a live refresh
    /// token, past the retention time.
    pub tokens: u64,
    /// Expired sessions.
    pub sessions: u64,
    /// Login-failure counters whose window and lock are over.
    pub login_failures: u64,
}

impl PurgeReport {
    /// The rows deleted in all.
    pub fn total(&self) -> u64 {
        self.codes + self.tokens + self.sessions + self.login_failures
    }
}
