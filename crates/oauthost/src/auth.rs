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

/// How many password hashes are computed at once when no limit is given: one per core but
/// one, and at least one.
///
/// Each hash takes a core for a few milliseconds and 19 MiB: leaving a core free keeps the
/// rest of the server (token checks, issuance) responsive while logins saturate hashing,
/// and keeps peak memory lower.
pub fn default_hashing_limit() -> usize {
    hashing_limit_for(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The default limit on a machine of `cores` cores.
fn hashing_limit_for(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

/// Checks passwords against oauthost's own user table (argon2id).
///
/// Hashing runs on `limit` threads of its own, so that a burst of logins can neither
/// starve the async runtime nor exhaust memory (19 MiB per hash).
#[derive(Debug, Clone)]
pub struct StoreAuthenticator {
    store: DynStore,
    permits: Arc<Semaphore>,
    hashers: Hashers,
}

/// A password check waiting for a hashing thread.
type HashJob = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that compute password hashes, each reusing its memory.
///
/// argon2id takes 19 MiB for each hash. On tokio's blocking pool, hashes would run on
/// whichever of its many threads is free, and the allocator keeps freed memory per thread
/// (an arena each): peak memory grew to hundreds of MB under a stream of logins. A few
/// long-lived threads keep it at `limit` times 19 MiB. The threads end with the last clone.
#[derive(Clone)]
struct Hashers {
    jobs: std::sync::mpsc::Sender<HashJob>,
}

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hashers")
    }
}

impl Hashers {
    fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("oauthost-hash-{index}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// Runs `work` on a hashing thread and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| AuthError::Closed)?;
        result.await.map_err(|_| AuthError::Closed)
    }
}

impl StoreAuthenticator {
    /// An authenticator over `store` computing at most `limit` hashes at once.
    pub fn new(store: DynStore, limit: usize) -> Self {
        Self {
            store,
            permits: Arc::new(Semaphore::new(limit.max(1))),
            hashers: Hashers::new(limit.max(1)),
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
        let (user, matches) = self
            .hashers
            .run(move || match found {
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

#[cfg(test)]
mod tests {
    use super::hashing_limit_for;

    #[test]
    fn hashing_leaves_a_core_for_the_rest_of_the_server() {
        assert_eq!(hashing_limit_for(1), 1);
        assert_eq!(hashing_limit_for(2), 1);
        assert_eq!(hashing_limit_for(8), 7);
    }
}
