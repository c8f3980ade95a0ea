//! The operations an application or an operator performs on oauthost's data, with the
//! validation they need: the seed's `oauthost.toolbox`.
//!
//! Every function checks its input before writing, and each writes in one transaction: on
//! error, the database is left as it was.

use oauthost_core::{
    client::{ClientType, GrantType, GrantTypes},
    clock::{Clock, SystemClock},
    password::{self, PasswordError},
    redirect::{RedirectUri, RedirectUriError},
    scope::{ScopeId, ScopeIdError},
    secret::{random_identifier, Secret},
};
use url::Url;

use crate::store::{Client, NewClient, NewScope, NewUser, Scope, Store, StoreError, User};

/// Longest client or username text accepted.
pub const MAX_NAME_LEN: usize = 150;
/// Longest access token lifetime a client may be given: ten years, in seconds.
pub const MAX_TOKEN_LIFETIME: u32 = 10 * 365 * 24 * 3600;
/// The access token lifetime of a client when none is given, in seconds.
pub const DEFAULT_TOKEN_LIFETIME: u32 = 3600;

/// Why a toolbox operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ToolboxError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A redirect URI is not acceptable.
    #[error(transparent)]
    RedirectUri(#[from] RedirectUriError),
    /// A scope identifier is malformed.
    #[error(transparent)]
    ScopeId(#[from] ScopeIdError),
    /// A password breaks the rules.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// No user has this username.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// A username breaks the rules.
    #[error("invalid username {0:?}: use 1 to 150 letters, digits and @ . + - _")]
    InvalidUsername(String),
    /// A client identifier breaks the rules.
    #[error(
        "invalid client identifier {0:?}: use 1 to 100 printable ASCII characters without spaces"
    )]
    InvalidClientIdentifier(String),
    /// A required text is empty.
    #[error("the {0} must not be empty")]
    Empty(&'static str),
    /// A text is too long.
    #[error("the {0} must be at most {MAX_NAME_LEN} characters long")]
    TooLong(&'static str),
    /// A token lifetime is out of range.
    #[error("the token lifetime must be between 1 and {MAX_TOKEN_LIFETIME} seconds, not {0}")]
    TokenLifetime(u64),
    /// A public client was given a secret.
    #[error("only a confidential client can have a secret")]
    SecretForPublicClient,
    /// A client link is not an http(s) URL.
    #[error("the client link {0:?} must be an absolute http or https URL")]
    InvalidLink(String),
    /// A client was given no grant type.
    #[error("a client needs at least one grant type")]
    NoGrantType,
    /// A blocking task (password hashing) failed.
    #[error("internal error: a background task failed")]
    Task(#[from] tokio::task::JoinError),
}

pub(crate) fn check_username(username: &str) -> Result<(), ToolboxError> {
    let valid = !username.is_empty()
        && username.chars().count() <= MAX_NAME_LEN
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(ToolboxError::InvalidUsername(
            username.escape_debug().to_string(),
        ))
    }
}

/// Creates a user with an argon2id-hashed password. Hashing runs on a blocking thread.
///
/// Refused: a malformed or taken username, an empty password.
pub async fn create_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    is_staff: bool,
) -> Result<User, ToolboxError> {
    create_user_with_status(store, username, password, is_staff, true).await
}

/// Like [`create_user`], choosing whether the user starts active: an inactive user cannot
/// log in until activated.
pub async fn create_user_with_status(
    store: &dyn Store,
    username: &str,
    password: &str,
    is_staff: bool,
    is_active: bool,
) -> Result<User, ToolboxError> {
    check_username(username)?;
    password::check_rules(password)?;
    if store.find_user(username).await?.is_some() {
        return Err(StoreError::Duplicate {
            what: "username",
            value: username.to_owned(),
        }
        .into());
    }
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
    let user = store
        .create_user(
            NewUser {
                username: username.to_owned(),
                password_hash: Some(hash),
                is_staff,
                is_active,
            },
            SystemClock.now(),
        )
        .await?;
    Ok(user)
}

/// Creates a scope; its title defaults to one built from the identifier
/// (`polls:results` gives "Polls Results").
pub async fn add_scope(
    store: &dyn Store,
    identifier: &str,
    title: Option<&str>,
    enabled: bool,
) -> Result<Scope, ToolboxError> {
    let identifier: ScopeId = identifier.parse()?;
    let title = match title {
        Some(title) => check_title("scope title", title)?.to_owned(),
        None => identifier.default_title(),
    };
    Ok(store
        .create_scope(NewScope {
            identifier,
            title,
            enabled,
        })
        .await?)
}

/// What to register: the seed's `register_client` arguments, as a builder.
///
/// Defaults follow the seed: a public client, a token lifetime of 3600 seconds, unknown
/// scopes created on the fly, `hash_sign_supported` on, every grant type allowed.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    title: String,
    registrant: String,
    identifier: Option<String>,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    register_unknown_scopes: bool,
    token_lifetime: u64,
    client_type: ClientType,
    secret: Option<String>,
    description: String,
    link: Option<String>,
    hash_sign_supported: bool,
    grant_types: GrantTypes,
    allow_insecure_http: bool,
}

impl ClientRegistration {
    /// A client called `title`, registered by the user called `registrant`.
    pub fn new(title: impl Into<String>, registrant: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            registrant: registrant.into(),
            identifier: None,
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            register_unknown_scopes: true,
            token_lifetime: u64::from(DEFAULT_TOKEN_LIFETIME),
            client_type: ClientType::Public,
            secret: None,
            description: String::new(),
            link: None,
            hash_sign_supported: true,
            grant_types: GrantTypes::default(),
            allow_insecure_http: false,
        }
    }

    /// The public `client_id`; without it, 43 random URL-safe characters are generated.
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// Adds a redirection endpoint.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Restricts the client to these scope identifiers (none: every enabled scope).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Whether unknown scope identifiers are created (the default) or refused.
    pub fn register_unknown_scopes(mut self, register: bool) -> Self {
        self.register_unknown_scopes = register;
        self
    }

    /// Lifetime of the client's access tokens, in seconds (1 to ten years).
    pub fn token_lifetime(mut self, seconds: u64) -> Self {
        self.token_lifetime = seconds;
        self
    }

    /// Makes the client public (`true`, the default) or confidential (`false`), as the
    /// seed's `public` argument.
    pub fn public(mut self, public: bool) -> Self {
        self.client_type = if public {
            ClientType::Public
        } else {
            ClientType::Confidential
        };
        self
    }

    /// Sets the secret of a confidential client. Without it, a confidential client gets a
    /// generated 256-bit secret.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// A description shown to operators.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The client's home page.
    pub fn link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// Whether the client accepts a `#` fragment in a `Location` header (default `true`).
    pub fn hash_sign_supported(mut self, supported: bool) -> Self {
        self.hash_sign_supported = supported;
        self
    }

    /// The grant types the client may use (default: all of them).
    pub fn grant_types(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = grants.into_iter().collect();
        self
    }

    /// Accepts plain-http redirect URIs to non-loopback hosts (debug mode only).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }
}

/// A client just registered.
#[derive(Debug)]
pub struct RegisteredClient {
    /// The stored client.
    pub client: Client,
    /// Its secret, for a confidential client: show it once, it is stored only as a hash.
    pub secret: Option<Secret>,
    /// Its redirection endpoints.
    pub redirect_uris: Vec<String>,
    /// The scopes it is restricted to.
    pub scopes: Vec<ScopeId>,
    /// Redirect URIs accepted only because of debug mode (plain http to a remote host).
    pub insecure_redirect_uris: Vec<String>,
}

/// `title` without surrounding spaces, if it is a valid title: not empty, at most
/// [`MAX_NAME_LEN`] characters. `what` names it in the error.
pub(crate) fn check_title<'a>(what: &'static str, title: &'a str) -> Result<&'a str, ToolboxError> {
    let title = title.trim();
    if title.is_empty() {
        Err(ToolboxError::Empty(what))
    } else if title.chars().count() > MAX_NAME_LEN {
        Err(ToolboxError::TooLong(what))
    } else {
        Ok(title)
    }
}

/// `seconds` as a token lifetime, if between 1 and [`MAX_TOKEN_LIFETIME`].
pub(crate) fn check_token_lifetime(seconds: u64) -> Result<i64, ToolboxError> {
    match i64::try_from(seconds) {
        Ok(seconds) if (1..=i64::from(MAX_TOKEN_LIFETIME)).contains(&seconds) => Ok(seconds),
        _ => Err(ToolboxError::TokenLifetime(seconds)),
    }
}

/// Checks that a client's link is an absolute http or https URL.
pub(crate) fn check_link(link: &str) -> Result<(), ToolboxError> {
    match Url::parse(link) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(ToolboxError::InvalidLink(link.escape_debug().to_string())),
    }
}

pub(crate) fn check_client_identifier(identifier: &str) -> Result<(), ToolboxError> {
    let valid =
        (1..=100).contains(&identifier.len()) && identifier.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(ToolboxError::InvalidClientIdentifier(
            identifier.escape_debug().to_string(),
        ))
    }
}

/// Registers a client, as the seed's `register_client`: its redirect endpoints and scope
/// restriction are written in the same transaction.
///
/// Refused, with nothing written: an empty or taken title, a malformed or taken
/// identifier, an unknown registrant, an invalid redirect URI or link, a malformed scope,
/// an unknown scope when `register_unknown_scopes` is off, an out-of-range token lifetime,
/// a secret for a public client.
pub async fn register_client(
    store: &dyn Store,
    registration: ClientRegistration,
) -> Result<RegisteredClient, ToolboxError> {
    register_client_at(store, registration, &SystemClock).await
}

/// [`register_client`] with the registration time taken from `clock`.
pub async fn register_client_at(
    store: &dyn Store,
    registration: ClientRegistration,
    clock: &dyn Clock,
) -> Result<RegisteredClient, ToolboxError> {
    let r = registration;
    let title = check_title("client title", &r.title)?;
    let identifier = match r.identifier {
        Some(identifier) => {
            check_client_identifier(&identifier)?;
            identifier
        }
        None => random_identifier(),
    };
    let lifetime = check_token_lifetime(r.token_lifetime)?;
    if r.grant_types.iter().next().is_none() {
        return Err(ToolboxError::NoGrantType);
    }
    let redirect_uris = r
        .redirect_uris
        .iter()
        .map(|uri| RedirectUri::parse(uri, r.allow_insecure_http))
        .collect::<Result<Vec<_>, _>>()?;
    let scopes = r
        .scopes
        .iter()
        .map(|s| s.parse::<ScopeId>())
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(link) = &r.link {
        check_link(link)?;
    }
    let secret = match (r.client_type, r.secret) {
        (ClientType::Public, Some(_)) => return Err(ToolboxError::SecretForPublicClient),
        (ClientType::Public, None) => None,
        (ClientType::Confidential, Some(chosen)) if chosen.is_empty() => {
            return Err(ToolboxError::Empty("client secret"))
        }
        (ClientType::Confidential, Some(chosen)) => Some(Secret::new(chosen)),
        (ClientType::Confidential, None) => Some(Secret::generate()),
    };
    let registrant = store
        .find_user(&r.registrant)
        .await?
        .ok_or_else(|| ToolboxError::UnknownUser(r.registrant.clone()))?;

    let client = store
        .register_client(
            NewClient {
                identifier,
                title: title.to_owned(),
                secret_hash: secret.as_ref().map(Secret::hash),
                client_type: r.client_type,
                registrant_id: registrant.id,
                description: r.description,
                link: r.link,
                token_lifetime: lifetime,
                hash_sign_supported: r.hash_sign_supported,
                grant_types: r.grant_types,
                redirect_uris: redirect_uris.clone(),
                scopes: scopes.clone(),
                register_unknown_scopes: r.register_unknown_scopes,
            },
            clock.now(),
        )
        .await?;
    Ok(RegisteredClient {
        client,
        secret,
        insecure_redirect_uris: redirect_uris
            .iter()
            .filter(|uri| uri.is_insecure())
            .map(|uri| uri.to_string())
            .collect(),
        redirect_uris: redirect_uris.iter().map(|uri| uri.to_string()).collect(),
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django_rules() {
        for ok in ["alice", "bob.smith+oauth@example.com", "Zoë_1-2"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "semi;colon", "tab\t", &"x".repeat(151)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_identifiers_are_printable_ascii() {
        assert!(check_client_identifier("1234").is_ok());
        assert!(check_client_identifier("my-app_v2.example").is_ok());
        for bad in ["", "has space", "ünïcode", &"x".repeat(101)] {
            assert!(check_client_identifier(bad).is_err(), "{bad:?}");
        }
    }
}
