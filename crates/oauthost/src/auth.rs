//! Checking who a user is.
//!
//! oauthost ships a user table and [`StoreAuthenticator`], which checks passwords against
//! it. An application with users of its own implements [`Authenticator`] instead: it checks
//! the password its own way and hands back the matching oauthost [`User`], creating it on
//! first login (with no password hash) so that codes and tokens can refer to it.

use std::sync::Arc;

use async_trait::async_trait;
use oauthost_core::password;
use tokio::sync::Semaphore;

use crate::store::{DynStore, StoreError, User};

/// Why a login could not be checked (not: why it was refused, which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that checks the password failed.
    #[error("internal error: the password check did not complete")]
    Task(#[from] tokio::task::JoinError),
    /// The concurrency limit was closed (the server is shutting down).
    #[error("the server is shutting down")]
    Closed,
}

/// Checks a username and password.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The active user with these credentials, or `None`. An unknown user, a wrong password
    /// and an inactive user all give `None`, and should take the same time, so that a caller
    /// cannot tell which usernames exist.
    async fn authenticate(&self, username: &str, password: &str)
        -> Result<Option<User>, AuthError>;
}

/// How many password hashes are computed at once when no limit is given: one per core.
pub fn default_hashing_limit() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Checks passwords against oauthost's own user table (argon2id).
///
/// Hashing runs on blocking threads, at most `limit` at once, so that a burst of logins
/// cannot starve the async runtime or exhaust memory (19 MiB per hash).
#[derive(Debug, Clone)]
pub struct StoreAuthenticator {
    store: DynStore,
    permits: Arc<Semaphore>,
}

impl StoreAuthenticator {
    /// An authenticator over `store` computing at most `limit` hashes at once.
    pub fn new(store: DynStore, limit: usize) -> Self {
        Self {
            store,
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        let found = self.store.find_user_credentials(username).await?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Closed)?;
        let password = password.to_owned();
        let (user, matches) = tokio::task::spawn_blocking(move || match found {
            Some((user, Some(hash))) => {
                let matches = password::verify(&password, &hash);
                (Some(user), matches)
            }
            _ => (None, password::verify_nothing(&password)),
        })
        .await?;
        Ok(user.filter(|user| matches && user.is_active))
    }
}
