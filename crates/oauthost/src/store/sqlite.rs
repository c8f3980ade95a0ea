//! The SQLite backend: the embedded default, one file, nothing to install.

use std::{
    collections::HashSet,
    ops::{Deref, DerefMut},
    str::FromStr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    pool::PoolConnection,
    sqlite::{
        LockedSqliteHandle, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
        SqliteOperation, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
    ConnectOptions as _, QueryBuilder, Sqlite,
};
use tokio::sync::mpsc;

use super::{
    admin_sql::impl_admin_store,
    batch::{ExchangeQueue, RotationQueue, WriteQueue},
    changes::{change_of, Change, ChangeFeed},
    redact_url,
    rows::new_token_columns,
    sql::{impl_store, BatchConnection, StoredIds},
    NewToken, StoreError, StoreResult, Token,
};

/// More changes than this in one transaction are published as [`Change::Everything`].
const MAX_CHANGES_PER_COMMIT: usize = 64;

/// How long after a commit its changes are published a second time.
const REPUBLISH_AFTER: Duration = Duration::from_millis(2);

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Size of the write-ahead log past which a checkpoint waits for its writers' turn, so that
/// the log starts over: 256 MiB.
const LOG_BYTES_LIMIT: i64 = 256 << 20;

/// Page size of a new database file, in bytes: 1 KiB rather than SQLite's 4 KiB.
///
/// A commit writes every page it changed, whole, to the write-ahead log. The store's rows are
/// small (a token is about 200 bytes) and its writes touch few rows each on many pages (a
/// rotation marks one old token, an exchange one code), so smaller pages mean fewer bytes
/// written per commit and copied per checkpoint: in the benchmark, half the log for the
/// same work, and so half the log restarts that hold writes (see [`checkpoints`]). A file
/// made with another page size keeps it.
const PAGE_SIZE: u32 = 1024;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store in a SQLite database file, in WAL mode with foreign keys enforced.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The connection tokens are written through: new tokens' batches, rotations and code
    /// exchanges.
    token_writer: TokenWriter,
    changes: ChangeFeed,
    /// Taken by every write: SQLite lets one writer in at a time, and a writer that finds
    /// the lock taken sleeps in its busy handler for milliseconds. Queueing writers here
    /// instead hands the lock over as soon as it is free. Readers never wait (WAL mode).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// New tokens, written in batches (see [`batch`](super::batch)); started on first use.
    token_writes: Arc<OnceLock<WriteQueue<NewToken, Token>>>,
    /// Rotations of refresh tokens, written in batches; started on first use.
    rotations: Arc<OnceLock<RotationQueue>>,
    /// Code exchanges, written in batches; started on first use.
    exchanges: Arc<OnceLock<ExchangeQueue>>,
    /// The task of [`checkpoints`], stopped with the last clone of the store.
    _checkpointing: Option<Arc<AbortOnDrop>>,
}

/// Stops a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
            .busy_timeout(Duration::from_secs(5))
            // No connection copies the log into the database after its own commit, which
            // would hold up the requests queued behind that write (see `checkpoints`).
            .pragma("wal_autocheckpoint", "0")
            .page_size(PAGE_SIZE);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
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
        let open = |connections: u32| {
            let feed = changes.clone();
            let committed = committed.clone();
            let mut pool = SqlitePoolOptions::new()
                .max_connections(connections)
                // An in-process database needs no ping before each use (a round trip to
                // the connection's thread, on every query's path).
                .test_before_acquire(false);
            if in_memory {
                pool = pool.idle_timeout(None).max_lifetime(None);
            }
            pool.after_connect(move |conn, _| {
                let feed = feed.clone();
                let committed = committed.clone();
                Box::pin(async move {
                    watch_changes(&mut conn.lock_handle().await?, feed, committed);
                    Ok(())
                })
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
        };
        let connect_error = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        let (pool, token_writer) = if in_memory {
            // Each connection to `:memory:` is a database of its own: keep exactly one.
            let pool = open(1).await.map_err(connect_error)?;
            (pool.clone(), TokenWriter::Pool(pool))
        } else {
            let pool = open(8).await.map_err(connect_error)?;
            let mut own = options.connect().await.map_err(connect_error)?;
            watch_changes(
                &mut own.lock_handle().await.map_err(connect_error)?,
                changes.clone(),
                committed.clone(),
            );
            (
                pool,
                TokenWriter::Own(Arc::new(tokio::sync::Mutex::new(own))),
            )
        };
        let writer = Arc::<tokio::sync::Mutex<()>>::default();
        let checkpointing = (!in_memory).then(|| {
            let checkpoints = checkpoints(pool.clone(), Arc::clone(&writer));
            Arc::new(AbortOnDrop(tokio::spawn(checkpoints)))
        });
        Ok(Self {
            pool,
            token_writer,
            changes,
            _checkpointing: checkpointing,
            token_writes: Arc::default(),
            rotations: Arc::default(),
            exchanges: Arc::default(),
            writer,
        })
    }

    /// The lock writers take turns on (see the `writer` field).
    fn write_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        Some(Arc::clone(&self.writer))
    }

    /// The feed of changes to tokens, users and clients made through this store's pool.
    fn feed(&self) -> ChangeFeed {
        self.changes.clone()
    }

    /// Where code exchanges write their tokens.
    fn exchange_writer(&self) -> &TokenWriter {
        &self.token_writer
    }

    /// Where batches of rotations are written: the same connection.
    fn rotation_writer(&self) -> &TokenWriter {
        &self.token_writer
    }

    /// Where batches of new tokens are written: the same connection.
    fn new_token_writer(&self) -> &TokenWriter {
        &self.token_writer
    }

    /// Inserts `tokens` in one statement (a row of values each), returning their ids.
    async fn insert_rows(
        connection: &mut SqliteConnection,
        tokens: &[&NewToken],
    ) -> Result<StoredIds, sqlx::Error> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "INSERT INTO oauthost_tokens (",
            new_token_columns!(),
            ") "
        ));
        query.push_values(tokens, |mut row, token| {
            row.push_bind(token.access_token_hash.as_bytes())
                .push_bind(token.refresh_token_hash.as_ref().map(|h| h.as_bytes()))
                .push_bind("bearer")
                .push_bind(token.user_id)
                .push_bind(token.client_id)
                .push_bind(token.code_id)
                .push_bind(token.scopes.to_string())
                .push_bind(token.issued_at.unix_timestamp())
                .push_bind(token.expires_at.unix_timestamp())
                .push_bind(token.refresh_family.as_deref());
        });
        query.push(" RETURNING id, access_token_hash");
        Ok(StoredIds::new(
            query.build_query_as().fetch_all(&mut *connection).await?,
        ))
    }

    /// Rotates each `(old id, new token)` pair in one transaction of two statements: an
    /// `UPDATE` of the old tokens, then an `INSERT` of the new tokens whose old one it
    /// changed. The ids must be distinct.
    async fn rotate_rows(
        connection: &mut SqliteConnection,
        rotations: &[(i64, &NewToken)],
    ) -> StoreResult<StoredIds> {
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE oauthost_tokens SET refresh_rotated = TRUE, revoked = TRUE \
             WHERE refresh_rotated = FALSE AND revoked = FALSE AND id IN (",
        );
        let mut ids = update.separated(", ");
        for (old_id, _) in rotations {
            ids.push_bind(*old_id);
        }
        update.push(") RETURNING id");
        let rotated: HashSet<i64> = update
            .build_query_scalar::<i64>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let replacing: Vec<&NewToken> = rotations
            .iter()
            .filter(|(old_id, _)| rotated.contains(old_id))
            .map(|(_, new)| *new)
            .collect();
        let stored = if replacing.is_empty() {
            StoredIds::new(Vec::new())
        } else {
            Self::insert_rows(&mut tx, &replacing).await?
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// The connection pool, for an application that keeps tables of its own in the same
    /// database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The connection tokens are written through. A connection of its own keeps its page
/// cache current, where the pool's connections find theirs outdated after every write by
/// another connection; and it is used directly, where a pool pings a connection on its
/// thread after each use before handing it out again (a round trip per write).
#[derive(Debug, Clone)]
enum TokenWriter {
    /// A connection of its own, to a database file; whoever holds the lock writes.
    Own(Arc<tokio::sync::Mutex<SqliteConnection>>),
    /// The pool's only connection: in memory, a second connection would open a second
    /// database.
    Pool(SqlitePool),
}

impl TokenWriter {
    /// Waits for the connection.
    async fn acquire(&self) -> Result<TokenConnection, sqlx::Error> {
        Ok(match self {
            Self::Own(connection) => {
                TokenConnection::Own(Arc::clone(connection).lock_owned().await)
            }
            Self::Pool(pool) => TokenConnection::Pool(pool.acquire().await?),
        })
    }
}

/// The token writer's connection, held until dropped.
enum TokenConnection {
    Own(tokio::sync::OwnedMutexGuard<SqliteConnection>),
    Pool(PoolConnection<Sqlite>),
}

/// Nothing to note after a batch: SQLite runs in this process, no connection can drop.
impl BatchConnection for TokenConnection {}

impl Deref for TokenConnection {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Own(connection) => connection,
            Self::Pool(connection) => connection,
        }
    }
}

impl DerefMut for TokenConnection {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Own(connection) => connection,
            Self::Pool(connection) => connection,
        }
    }
}

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`], from a
/// connection of its own, without blocking writers (a `PASSIVE` checkpoint), until the
/// store is dropped. Connections do not do it themselves after their commits (the
/// `wal_autocheckpoint` pragma is off): that made every write queued behind such a commit
/// wait for its `fsync`.
///
/// The log starts over only once a checkpoint has copied all of it, which a checkpoint
/// racing steady writes never does: under a sustained load of new tokens it grew by
/// 150 MB a second. Past [`LOG_BYTES_LIMIT`], the checkpoint takes the writers' turn
/// (`writer`) and copies the rest (`RESTART`), so that the next write starts the log over;
/// writes wait for that one checkpoint's copy and `fsync`s (10 to 40 ms on the benchmark's
/// disk).
async fn checkpoints(pool: SqlitePool, writer: Arc<tokio::sync::Mutex<()>>) {
    let page_size = sqlx::query_scalar::<_, i64>("PRAGMA page_size")
        .fetch_one(&pool)
        .await
        .unwrap_or(4096);
    let frames_limit = log_frames_limit(page_size);
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match checkpoint(&pool, "PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok(frames) if frames >= frames_limit => {
                let _turn = writer.lock().await;
                let started = std::time::Instant::now();
                match checkpoint(&pool, "PRAGMA wal_checkpoint(RESTART)").await {
                    Ok(_) => tracing::debug!(
                        frames,
                        writes_held_ms = started.elapsed().as_millis(),
                        "SQLite log restarted"
                    ),
                    Err(error) => tracing::warn!(%error, "cannot restart the SQLite log"),
                }
            }
            Ok(_) => {}
            Err(error) => {
                if !pool.is_closed() {
                    tracing::warn!(%error, "cannot checkpoint the SQLite log");
                }
            }
        }
    }
}

/// Frames of `page_size` bytes that make [`LOG_BYTES_LIMIT`] (one page a frame).
fn log_frames_limit(page_size: i64) -> i64 {
    LOG_BYTES_LIMIT / page_size.max(512)
}

/// Runs a checkpoint `statement` (`PRAGMA wal_checkpoint(MODE)`); returns how many frames
/// the log holds.
async fn checkpoint(pool: &SqlitePool, statement: &'static str) -> sqlx::Result<i64> {
    // The row: whether it was blocked, frames in the log, frames copied.
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as(statement).fetch_one(pool).await?;
    Ok(frames)
}

/// Publishes the token, user and client rows a connection updates or deletes, and its
/// writes to scopes, when its
/// transaction commits (and sends them to `committed` to be published again just after).
fn watch_changes(
    handle: &mut LockedSqliteHandle<'_>,
    feed: ChangeFeed,
    committed: mpsc::UnboundedSender<Vec<Change>>,
) {
    let pending: Arc<Mutex<Vec<Change>>> = Arc::default();
    let seen = Arc::clone(&pending);
    handle.set_update_hook(move |update| {
        let inserted = match update.operation {
            SqliteOperation::Insert => true,
            SqliteOperation::Update | SqliteOperation::Delete => false,
            _ => return,
        };
        if let (Some(change), Ok(mut pending)) =
            (change_of(update.table, update.rowid, inserted), seen.lock())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The page size of the store's database file, as SQLite reports it.
    async fn page_size_of(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&store.pool)
            .await
            .expect("SQLite reports its page size")
    }

    #[tokio::test]
    async fn new_files_get_small_pages_and_existing_files_keep_theirs() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let new = dir.path().join("new.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", new.display()))
            .await
            .expect("a new file opens");
        assert_eq!(page_size_of(&store).await, i64::from(PAGE_SIZE));

        // A file SQLite made with its default pages, as before PAGE_SIZE existed.
        let old = dir.path().join("old.db");
        let options = SqliteConnectOptions::new()
            .filename(&old)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut made = options.connect().await.expect("SQLite makes a file");
        sqlx::query("CREATE TABLE made_before (id INTEGER PRIMARY KEY)")
            .execute(&mut made)
            .await
            .expect("SQLite writes the file");
        drop(made);
        let store = SqliteStore::connect(&format!("sqlite://{}", old.display()))
            .await
            .expect("an existing file opens");
        assert_eq!(page_size_of(&store).await, 4096);
    }

    #[test]
    fn the_log_limit_is_the_same_size_whatever_the_page_size() {
        assert_eq!(log_frames_limit(1024), 262_144);
        assert_eq!(log_frames_limit(4096), 65_536);
        assert_eq!(log_frames_limit(65_536) * 65_536, LOG_BYTES_LIMIT);
        assert_eq!(
            log_frames_limit(0),
            LOG_BYTES_LIMIT / 512,
            "a nonsense size is bounded"
        );
    }
}
