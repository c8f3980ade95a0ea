//! The SQLite backend: the embedded default, one file, nothing to install.

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    sqlite::{
        LockedSqliteHandle, SqliteConnectOptions, SqliteJournalMode, SqliteOperation, SqlitePool,
        SqlitePoolOptions, SqliteSynchronous,
    },
};
use tokio::sync::mpsc;

use super::{
    admin_sql::impl_admin_store,
    changes::{change_of, Change, ChangeFeed},
    redact_url,
    sql::impl_store,
    StoreError, StoreResult,
};

/// More changes than this in one transaction are published as [`Change::Everything`].
const MAX_CHANGES_PER_COMMIT: usize = 64;

/// How long after a commit its changes are published a second time.
const REPUBLISH_AFTER: Duration = Duration::from_millis(2);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store in a SQLite database file, in WAL mode with foreign keys enforced.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    changes: ChangeFeed,
}

impl SqliteStore {
    /// Opens (creating when missing) the database named by a `sqlite:` URL, such as
    /// `sqlite://oauthost.db`, `sqlite:///var/lib/oauthost/db.sqlite` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| invalid(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // Each connection to `:memory:` is a database of its own: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let changes = ChangeFeed::new(true);
        let (committed, mut republish) = mpsc::unbounded_channel::<Vec<Change>>();
        let feed = changes.clone();
        tokio::spawn(async move {
            // Once more just after each commit: a check that read the row while the commit
            // was being written may have cached it as it was.
            while let Some(first) = republish.recv().await {
                tokio::time::sleep(REPUBLISH_AFTER).await;
                let mut batch = first;
                while let Ok(more) = republish.try_recv() {
                    batch.extend(more);
                }
                for change in batch {
                    feed.publish(change);
                }
            }
        });
        let feed = changes.clone();
        let pool = pool
            .after_connect(move |conn, _| {
                let feed = feed.clone();
                let committed = committed.clone();
                Box::pin(async move {
                    watch_changes(&mut conn.lock_handle().await?, feed, committed);
                    Ok(())
                })
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self { pool, changes })
    }

    /// The feed of changes to tokens, users and clients made through this store's pool.
    fn feed(&self) -> ChangeFeed {
        self.changes.clone()
    }

    /// The connection pool, for an application that keeps tables of its own in the same
    /// database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Publishes the token, user and client rows a connection updates or deletes, when its
/// transaction commits (and sends them to `committed` to be published again just after).
fn watch_changes(
    handle: &mut LockedSqliteHandle<'_>,
    feed: ChangeFeed,
    committed: mpsc::UnboundedSender<Vec<Change>>,
) {
    let pending: Arc<Mutex<Vec<Change>>> = Arc::default();
    let seen = Arc::clone(&pending);
    handle.set_update_hook(move |update| {
        if !matches!(
            update.operation,
            SqliteOperation::Update | SqliteOperation::Delete
        ) {
            return;
        }
        if let (Some(change), Ok(mut pending)) =
            (change_of(update.table, update.rowid), seen.lock())
        {
            if pending.len() >= MAX_CHANGES_PER_COMMIT {
                pending.clear();
                pending.push(Change::Everything);
            } else if pending.first() != Some(&Change::Everything) {
                pending.push(change);
            }
        }
    });
    let done = Arc::clone(&pending);
    handle.set_commit_hook(move || {
        let changes = done
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        if !changes.is_empty() {
            for change in &changes {
                feed.publish(*change);
            }
            let _ = committed.send(changes);
        }
        true
    });
    handle.set_rollback_hook(move || {
        if let Ok(mut pending) = pending.lock() {
            pending.clear();
        }
    });
}

impl_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite);
impl_admin_store!(SqliteStore, sqlx::Sqlite);
