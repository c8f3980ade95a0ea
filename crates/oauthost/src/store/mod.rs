//! Storage: async traits named for their role, one module per database.
//!
//! Every trait is implemented by [`SqliteStore`] (the embedded default) and [`PostgresStore`]
//! (for several server instances sharing state); both run the same SQL, kept in one place.
//! [`connect`] picks the backend from the database URL and hands back a [`Store`], which is
//! every role at once.
//!
//! ```
//! # tokio_test_block_on(async {
//! use oauthost::store::{self, NewScope};
//!
//! let store = store::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//! store
//!     .create_scope(NewScope {
//!         identifier: "polls:index".parse()?,
//!         title: "Polls Index".into(),
//!         enabled: true,
//!     })
//!     .await?;
//! assert_eq!(store.list_scopes().await?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Runtime::new().unwrap().block_on(f)
//! # }
//! ```

pub mod admin;
mod admin_sql;
pub(crate) mod batch;
pub mod changes;
mod error;
mod model;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::{fmt, sync::Arc};

pub use admin::AdminStore;
use async_trait::async_trait;
pub use error::StoreError;
pub use model::*;
use oauthost_core::{scope::ScopeId, secret::SecretHash};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
use time::OffsetDateTime;

/// Short for the store's results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Users and their password hashes.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. A taken username is [`StoreError::Duplicate`].
    async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User>;
    /// The user called `username`.
    async fn find_user(&self, username: &str) -> StoreResult<Option<User>>;
    /// The user with database key `id`.
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// The user called `username` with the stored password hash, for checking a login.
    /// The hash never leaves the server.
    async fn find_user_credentials(
        &self,
        username: &str,
    ) -> StoreResult<Option<(User, Option<String>)>>;
    /// Every user, by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Activates or deactivates the user with database key `id`; `false` when there is
    /// none. An inactive user can neither log in nor use the tokens it had.
    async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool>;
}

/// Scopes.
#[async_trait]
pub trait ScopeStore: Send + Sync {
    /// Creates a scope. A taken identifier is [`StoreError::Duplicate`].
    async fn create_scope(&self, scope: NewScope) -> StoreResult<Scope>;
    /// The scope with this identifier.
    async fn find_scope(&self, identifier: &ScopeId) -> StoreResult<Option<Scope>>;
    /// Every scope, ordered by title.
    async fn list_scopes(&self) -> StoreResult<Vec<Scope>>;
}

/// Clients, their redirect endpoints and scope restrictions.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Registers a client, its redirect endpoints and its scope restriction in one
    /// transaction: on any error (a taken title or identifier, an unknown scope when
    /// `register_unknown_scopes` is false, an unknown registrant) nothing is written.
    async fn register_client(&self, client: NewClient, now: OffsetDateTime) -> StoreResult<Client>;
    /// The client whose public identifier is `identifier`.
    async fn find_client(&self, identifier: &str) -> StoreResult<Option<Client>>;
    /// The client with database key `id`.
    async fn find_client_by_key(&self, id: i64) -> StoreResult<Option<Client>>;
    /// Every client with its registrant's username, by title.
    async fn list_clients(&self) -> StoreResult<Vec<ClientSummary>>;
    /// The redirect URIs registered for the client with database key `client_id`, in
    /// registration order.
    async fn redirect_uris(&self, client_id: i64) -> StoreResult<Vec<String>>;
    /// The scopes the client is restricted to (empty: unrestricted), by title.
    async fn client_scopes(&self, client_id: i64) -> StoreResult<Vec<Scope>>;
}

/// Authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a new code.
    async fn insert_code(&self, code: NewAuthorizationCode) -> StoreResult<AuthorizationCode>;
    /// Exchanges the code with this hash, issued to the client `client_id`, for a token.
    ///
    /// In one transaction: the code is consumed, `check` decides (expiry, redirect URI,
    /// PKCE...), and the token it returns is stored, tied to the code. Of any number of
    /// concurrent calls for one code, exactly one consumes it; the others get
    /// [`CodeExchange::AlreadyUsed`], and see every token the winner issued. A code of
    /// another client is [`CodeExchange::Unknown`] and stays untouched.
    async fn exchange_code(
        &self,
        code_hash: &SecretHash,
        client_id: i64,
        check: CodeCheck<'_>,
    ) -> StoreResult<CodeExchange>;
}

/// Access and refresh tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token.
    async fn insert_token(&self, token: NewToken) -> StoreResult<Token>;
    /// The token whose access token hashes to `access_hash`, revoked or not.
    async fn find_token(&self, access_hash: &SecretHash) -> StoreResult<Option<Token>>;
    /// Revokes the token with database key `id`; `false` when there is none.
    async fn revoke_token(&self, id: i64) -> StoreResult<bool>;
    /// Revokes every token issued for the authorization code `code_id`, and those that
    /// refreshing them gave (after a code was replayed); returns how many were still active.
    async fn revoke_tokens_from_code(&self, code_id: i64) -> StoreResult<u64>;
    /// The token whose access token (or, with `by_refresh`, refresh token) hashes to
    /// `hash`, with its client's identifier and its user, in one query: what checking a
    /// bearer token or answering an introspection needs.
    async fn find_token_details(
        &self,
        hash: &SecretHash,
        by_refresh: bool,
    ) -> StoreResult<Option<TokenDetails>>;
    /// The token whose refresh token hashes to `refresh_hash`.
    async fn find_token_by_refresh(&self, refresh_hash: &SecretHash) -> StoreResult<Option<Token>>;
    /// Replaces the token `old_id` by `new`, atomically: the old token is marked rotated and
    /// revoked and the new one stored, in one transaction. Of concurrent calls for one old
    /// token, exactly one gets the new token; the others get `None` and nothing is written.
    async fn rotate_token(&self, old_id: i64, new: NewToken) -> StoreResult<Option<Token>>;
    /// Revokes every token of a refresh family (after a refresh token was replayed);
    /// returns how many were still active.
    async fn revoke_family(&self, family: &str) -> StoreResult<u64>;
}

/// Counters of failed logins, for throttling password guessing across every server
/// instance that shares the database.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    /// Counts one failure for `key`, in a window that restarts when the previous one began
    /// before `window_start`; locks the key until `lock_until` once `max_failures` is reached.
    /// Returns the failures counted in the current window.
    async fn record_login_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        window_start: OffsetDateTime,
        max_failures: u32,
        lock_until: OffsetDateTime,
    ) -> StoreResult<u32>;
    /// Until when `key` is locked, if it is locked at `now`.
    async fn login_locked_until(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<OffsetDateTime>>;
    /// Forgets the failures of `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
}

/// Server-side sessions of the login and consent pages, keyed by the hash of their id.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session, unless it does not exist or expired before `now`.
    async fn load_session(
        &self,
        id_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Creates or replaces a session.
    async fn save_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// Deletes a session (at logout, or when its id is renewed).
    async fn delete_session(&self, id_hash: &SecretHash) -> StoreResult<()>;
}

/// Deleting what can no longer be used, so that tables do not grow without bound.
#[async_trait]
pub trait PurgeStore: Send + Sync {
    /// Deletes at most `batch` rows of each kind that are dead at `now`: codes expired
    /// before `now`; sessions expired; login-failure counters whose window began before
    /// `window_start` and whose lock is over; and tokens whose access token expired before
    /// `retain_until` and that have no usable refresh token (none, or revoked or rotated).
    /// Tokens are kept until `retain_until` so that a replayed refresh token or code is
    /// still recognised, and its family revoked, for that long. Call again while it
    /// deletes a full batch.
    async fn purge(
        &self,
        now: OffsetDateTime,
        retain_until: OffsetDateTime,
        window_start: OffsetDateTime,
        batch: u32,
    ) -> StoreResult<PurgeReport>;
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// Every storage role, plus schema migrations: what the server and the command line use.
#[async_trait]
pub trait Store:
    UserStore
    + ScopeStore
    + ClientStore
    + CodeStore
    + TokenStore
    + SessionStore
    + LoginThrottleStore
    + PurgeStore
    + AdminStore
    + fmt::Debug
{
    /// The database this store runs on.
    fn backend(&self) -> Backend;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies the pending migrations and returns those it applied (none when the schema is
    /// up to date). Safe to run again.
    async fn migrate(&self) -> StoreResult<Vec<MigrationInfo>>;
    /// The migrations this binary knows that the database has not applied yet.
    async fn pending_migrations(&self) -> StoreResult<Vec<MigrationInfo>>;
    /// The feed of changes to tokens, users and clients, for caches of validated tokens
    /// (see [`changes`]); `None` when this store cannot tell, and nothing may be cached.
    fn change_feed(&self) -> Option<changes::ChangeFeed> {
        None
    }
}

/// A shareable store of either backend.
pub type DynStore = Arc<dyn Store>;

/// Opens the database that `url` names: `sqlite://PATH` (created when missing),
/// `sqlite::memory:`, or `postgres://...` / `postgresql://...`. The connection is made at
/// once, so an unreachable server or unwritable file is reported here.
pub async fn connect(url: &str) -> StoreResult<DynStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::InvalidUrl {
            url: redact_url(url),
            reason: "expected sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
        })
    }
}

/// `url` with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://bob:hunter2@db:5432/app?sslmode=require"),
            "postgres://bob:***@db:5432/app?sslmode=require"
        );
        assert_eq!(redact_url("postgres://bob@db/app"), "postgres://bob@db/app");
        assert_eq!(redact_url("sqlite://oauthost.db"), "sqlite://oauthost.db");
    }
}
