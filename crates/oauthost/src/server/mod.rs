//! The authorization server's logic: what `/auth/`, `/token/`, `/revoke/` and
//! `/introspect/` decide, over the store, without HTTP.
//!
//! [`Oauthost`] holds the store, the authenticator, the clock and the [`Settings`]; the
//! [`web`](crate::web) layer turns requests into calls of its methods and their results into
//! responses.

mod authorize;
mod cache;
mod client_auth;
mod grants;
mod login;
mod maintenance;
mod tokens;

use std::{sync::Arc, time::Duration};

pub use authorize::{AuthorizationRequest, AuthorizeError, ClientRedirect, ResponseType};
pub use client_auth::ClientCredentials;
pub use login::LoginOutcome;
pub use maintenance::TOKEN_RETENTION;
use oauthost_core::{clock::Clock, error::OAuthError};
pub use tokens::{Introspection, IssuedToken, TokenInfo};

use crate::{
    auth::{default_hashing_limit, AuthError, Authenticator, StoreAuthenticator},
    store::{DynStore, StoreError},
    web::Templates,
};

/// What can fail while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is refused: told to the client as is.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The store failed: logged, and told to the client as `server_error` only.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The authenticator failed.
    #[error("user authentication failed: {0}")]
    Auth(#[from] AuthError),
}

/// Short for results of the server's logic.
pub type ServerResult<T> = Result<T, ServerError>;

/// Throttling of failed logins.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    /// Failures of one username allowed within `window` before it is locked.
    pub max_failures_per_user: u32,
    /// Failures from one client address allowed within `window` before it is locked.
    pub max_failures_per_address: u32,
    /// The window in which failures are counted.
    pub window: Duration,
    /// How long a locked username or address stays locked.
    pub lockout: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(5 * 60),
        }
    }
}

/// How the server behaves. The defaults are the safe ones, with the seed's grants on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Debug mode (the seed's DEBUG): plain http allowed, more detail in error pages.
    pub debug: bool,
    /// Requests arrive over TLS (the server terminates it itself).
    pub tls: bool,
    /// Trust `X-Forwarded-Proto: https` (and `X-Forwarded-For`) from a TLS-terminating
    /// proxy. Off by default: without a proxy that sets them, clients could forge them.
    pub trust_forwarded_proto: bool,
    /// The implicit grant (`response_type=token`) is offered.
    pub implicit_grant: bool,
    /// The password grant is offered.
    pub password_grant: bool,
    /// PKCE's `plain` method is accepted (`S256` always is).
    pub pkce_plain: bool,
    /// Public clients must use PKCE with the authorization code grant.
    pub pkce_required_for_public_clients: bool,
    /// Lifetime of authorization codes.
    pub code_lifetime: Duration,
    /// Lifetime of a login session without activity.
    pub session_lifetime: Duration,
    /// Throttling of failed logins.
    pub login_throttle: LoginThrottle,
    /// Protection space named in `WWW-Authenticate` headers.
    pub realm: String,
    /// The issuer identifier for server metadata (RFC 8414), such as
    /// `https://auth.example.com`; by default built from each request's host.
    pub issuer: Option<String>,
    /// The path under which the router is mounted, such as `/oauth` (default: none).
    pub mount_path: String,
    /// Bearer tokens are accepted in the `access_token` query parameter (RFC 6750 §2.3; the
    /// seed's third way). On by default, as in the seed.
    pub query_tokens: bool,
    /// How long a validated access token is kept in memory, so that checking it again
    /// costs no database query (zero, the default: no cache). Revocation, rotation and
    /// deletion of the token, and any change of a user or client, drop entries at once
    /// (on PostgreSQL through `LISTEN`/`NOTIFY`, across instances); this is the bound on
    /// staleness should a change go unseen, such as a write to a SQLite file by another
    /// process. See [`crate::store::changes`]. Clients found by client authentication are
    /// kept as long, and dropped on any change of a client or user.
    pub token_cache_ttl: Duration,
    /// With the cache on PostgreSQL: trust a cache hit only once this instance has read
    /// every change notification committed before the request (one round trip on its
    /// listening connection, shared by concurrent requests), so that a token revoked on any
    /// instance is refused by every instance from the moment the revocation commits.
    /// Off by default: a hit is then trusted as soon as it is found, and a revocation
    /// reaches another instance when its notification is read (well under a millisecond
    /// with cores to spare, some milliseconds under full CPU load, as RFC 7009 §2.2
    /// allows). No effect on SQLite, where the hooks publish a change before its writer
    /// goes on.
    pub strict_revocation: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            debug: false,
            tls: false,
            trust_forwarded_proto: false,
            implicit_grant: true,
            password_grant: true,
            pkce_plain: true,
            pkce_required_for_public_clients: true,
            code_lifetime: Duration::from_secs(600),
            session_lifetime: Duration::from_secs(12 * 3600),
            login_throttle: LoginThrottle::default(),
            realm: "oauthost".into(),
            issuer: None,
            mount_path: String::new(),
            query_tokens: true,
            token_cache_ttl: Duration::ZERO,
            strict_revocation: false,
        }
    }
}

struct Inner {
    store: DynStore,
    authenticator: Arc<dyn Authenticator>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    templates: Templates,
    token_cache: Option<Arc<cache::TokenCache>>,
    client_cache: Option<Arc<cache::ClientCache>>,
}

/// A configured authorization server. Cheap to clone.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use oauthost::server::{Oauthost, Settings};
///
/// let store = oauthost::store::connect("sqlite::memory:").await?;
/// let server = Oauthost::builder(store)
///     .settings(Settings { debug: true, ..Settings::default() })
///     .build();
/// let app: axum::Router = axum::Router::new().merge(server.router());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Oauthost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Oauthost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauthost")
            .field("store", &self.inner.store)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Oauthost {
    /// A server over `store`, with default settings, oauthost's own user table for logins,
    /// and the system clock.
    pub fn new(store: DynStore) -> Self {
        Self::builder(store).build()
    }

    /// A builder, to change the settings, the authenticator or the clock.
    pub fn builder(store: DynStore) -> OauthostBuilder {
        OauthostBuilder {
            store,
            authenticator: None,
            clock: Arc::new(oauthost_core::clock::SystemClock),
            settings: Settings::default(),
            templates: Templates::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The page templates.
    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &dyn Authenticator {
        &*self.inner.authenticator
    }

    /// The current time.
    pub fn now(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }
}

/// Builds an [`Oauthost`].
#[must_use]
pub struct OauthostBuilder {
    store: DynStore,
    authenticator: Option<Arc<dyn Authenticator>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    templates: Templates,
}

impl std::fmt::Debug for OauthostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthostBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OauthostBuilder {
    /// Replaces the settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Checks logins with `authenticator` instead of oauthost's own user table.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Replaces some of the page templates.
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// Reads the time from `clock` (tests move a
    /// [`ManualClock`](oauthost_core::clock::ManualClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The server.
    pub fn build(self) -> Oauthost {
        let authenticator = self.authenticator.unwrap_or_else(|| {
            Arc::new(StoreAuthenticator::new(
                self.store.clone(),
                default_hashing_limit(),
            ))
        });
        let feed = (!self.settings.token_cache_ttl.is_zero())
            .then(|| self.store.change_feed())
            .flatten();
        let ttl = self.settings.token_cache_ttl;
        let strict = self.settings.strict_revocation;
        let token_cache = feed
            .clone()
            .map(|feed| cache::TokenCache::new(ttl, feed, strict));
        let client_cache = feed.map(|feed| cache::ClientCache::new(ttl, feed, strict));
        Oauthost {
            inner: Arc::new(Inner {
                token_cache,
                client_cache,
                store: self.store,
                authenticator,
                clock: self.clock,
                settings: self.settings,
                templates: self.templates,
            }),
        }
    }
}

/// Seconds of a [`Duration`], as the store's `time` arithmetic wants them.
pub(crate) fn seconds(duration: Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}
