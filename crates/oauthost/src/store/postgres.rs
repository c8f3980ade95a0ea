//! The PostgreSQL backend: for deployments where several server instances share state.

use std::{
    io,
    ops::{Deref, DerefMut},
    str::FromStr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use sqlx::{
    migrate::Migrator,
    postgres::{PgArguments, PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions},
    query::QueryAs,
    Connection, Executor, Postgres,
};

use super::{
    admin_sql::impl_admin_store,
    batch::{ExchangeQueue, RotationQueue, WriteQueue},
    changes::{parse_notification, ChangeFeed},
    redact_url,
    rows::new_token_columns,
    sql::{impl_store, BatchConnection, StoredIds},
    NewToken, StoreError, StoreResult, Token,
};

/// The channel the triggers of migration 2 notify.
const CHANNEL: &str = "oauthost_changes";

/// How long to wait for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections for code exchanges, which run side by side.
const EXCHANGE_CONNECTIONS: usize = 8;

/// How long a connection may sit idle before it is pinged ahead of its next use.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The values of [`new_token_columns`], from the table `new` of [`new_token_table`].
macro_rules! new_token_values {
    () => {
        "new.access_token_hash, new.refresh_token_hash, 'bearer', new.user_id, \
         new.client_id, new.code_id, new.scopes, new.issued_at, new.expires_at, \
         new.refresh_family"
    };
}

/// The nine arrays of [`TokenColumns`] as a table `new`, one row per token: bound from `$1`
/// on, or, with `old_id`, after an array of the ids of the tokens they replace, as `$1`.
macro_rules! new_token_table {
    () => {
        "unnest($1::BYTEA[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], \
         $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[]) AS new (access_token_hash, \
         refresh_token_hash, user_id, client_id, code_id, scopes, issued_at, expires_at, \
         refresh_family)"
    };
    (old_id) => {
        "unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[], $4::BIGINT[], $5::BIGINT[], \
         $6::BIGINT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[]) AS new (old_id, \
         access_token_hash, refresh_token_hash, user_id, client_id, code_id, scopes, \
         issued_at, expires_at, refresh_family)"
    };
}

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The connection batches of new tokens are written through (see
    /// [`new_token_writer`](Self::new_token_writer)).
    new_tokens: WriterConnection,
    /// The connection batches of rotations are written through.
    rotations_writer: WriterConnection,
    /// The connections code exchanges are written through.
    exchange_connections: DirectConnections,
    changes: ChangeFeed,
    listening: Arc<AtomicBool>,
    /// New tokens, written in batches (see [`batch`](super::batch)); started on first use.
    token_writes: Arc<OnceLock<WriteQueue<NewToken, Token>>>,
    /// Rotations of refresh tokens, written in batches; started on first use.
    rotations: Arc<OnceLock<RotationQueue>>,
    /// Never started: on PostgreSQL, code exchanges run side by side on the pool's
    /// connections (see `exchange_code` in [`sql`](super::sql)).
    exchanges: Arc<OnceLock<ExchangeQueue>>,
}

impl PostgresStore {
    /// Writers need no turns on PostgreSQL, which locks rows, not the database.
    fn write_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        None
    }

    /// Connects to the database named by a `postgres://` URL. Options such as
    /// `?options=-c%20search_path%3Dmyschema` are honoured.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        let failed = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        // One direct connection first: a pool would retry until its timeout and report
        // only that, where this reports why (refused, unknown host, authentication...).
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| failed(timed_out()))?
            .map_err(failed)?;
        probe.close().await.map_err(failed)?;
        let pool = pool_options(16).connect_lazy_with(options.clone());
        let rotations_writer = WriterConnection::new(options.clone());
        let exchange_connections = DirectConnections::new(&options, EXCHANGE_CONNECTIONS);
        let new_tokens = WriterConnection::new(options.options([("synchronous_commit", "off")]));
        Ok(Self {
            pool,
            new_tokens,
            rotations_writer,
            exchange_connections,
            changes: ChangeFeed::asynchronous(),
            listening: Arc::default(),
            token_writes: Arc::default(),
            rotations: Arc::default(),
            exchanges: Arc::default(),
        })
    }

    /// The feed of changes, told by the database's triggers to a connection that listens
    /// from the first call on (it needs a tokio runtime; without one the feed never goes
    /// live). The feed is live while that connection is.
    fn feed(&self) -> ChangeFeed {
        if !self.listening.swap(true, Ordering::SeqCst) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(listen(self.pool.clone(), self.changes.clone()));
            }
        }
        self.changes.clone()
    }

    /// Where code exchanges write their tokens, side by side: connections of their own,
    /// whose commits are durable before they return (a lost exchange could be replayed).
    fn exchange_writer(&self) -> &DirectConnections {
        &self.exchange_connections
    }

    /// Where batches of rotations are written: a connection of their own, whose commits
    /// are durable before they return (a lost rotation could be replayed).
    fn rotation_writer(&self) -> &WriterConnection {
        &self.rotations_writer
    }

    /// Where batches of new tokens are written: a connection that does not wait for the log
    /// to reach the disk at commit (`synchronous_commit = off`). Should PostgreSQL crash,
    /// the tokens issued in the last moments (at most three times `wal_writer_delay`,
    /// 600 ms by default) are lost, which fails closed: their clients find them refused
    /// and ask again. Any later durable commit, such as a revocation, makes them durable.
    fn new_token_writer(&self) -> &WriterConnection {
        &self.new_tokens
    }

    /// The connection pool, for an application that keeps tables of its own in the same
    /// database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Inserts `tokens` in one statement, returning their ids. The statement takes one
    /// array per column: it is the same text, prepared once, whatever the batch's size, and
    /// PostgreSQL sets up nine parameters rather than nine per row.
    async fn insert_rows(
        connection: &mut PgConnection,
        tokens: &[&NewToken],
    ) -> Result<StoredIds, sqlx::Error> {
        const INSERT: &str = concat!(
            "INSERT INTO oauthost_tokens (",
            new_token_columns!(),
            ") ",
            "SELECT ",
            new_token_values!(),
            " FROM ",
            new_token_table!(),
            " RETURNING id, access_token_hash"
        );
        let rows = TokenColumns::new(tokens.iter().copied())
            .bind(sqlx::query_as(INSERT))
            .fetch_all(&mut *connection)
            .await?;
        Ok(StoredIds::new(rows))
    }

    /// Rotates each `(old id, new token)` pair in one statement, so in one round trip and
    /// its own transaction: a data-modifying `WITH` marks the old tokens rotated and
    /// revoked where they were neither, and the `INSERT` stores the new token of each one
    /// it marked. The ids must be distinct.
    async fn rotate_rows(
        connection: &mut PgConnection,
        rotations: &[(i64, &NewToken)],
    ) -> StoreResult<StoredIds> {
        const ROTATE: &str = concat!(
            "WITH new AS (SELECT * FROM ",
            new_token_table!(old_id),
            "), ",
            "rotated AS (UPDATE oauthost_tokens SET refresh_rotated = TRUE, revoked = TRUE ",
            "WHERE id = ANY($1) AND refresh_rotated = FALSE ",
            "AND revoked = FALSE RETURNING id) ",
            "INSERT INTO oauthost_tokens (",
            new_token_columns!(),
            ") ",
            "SELECT ",
            new_token_values!(),
            " FROM new JOIN rotated ON rotated.id = new.old_id ",
            "RETURNING id, access_token_hash"
        );
        let old_ids: Vec<i64> = rotations.iter().map(|(old_id, _)| *old_id).collect();
        let rows = TokenColumns::new(rotations.iter().map(|(_, new)| *new))
            .bind(sqlx::query_as(ROTATE).bind(old_ids))
            .fetch_all(&mut *connection)
            .await?;
        Ok(StoredIds::new(rows))
    }
}

/// A pool of at most `connections`. A connection idle for a while is pinged before use, in
/// case the server dropped it meanwhile (restarted, say); one back from a query a moment
/// ago is not, which would cost every query a second round trip. (Each is also pinged as
/// it goes back to the pool, off the request's path.)
fn pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// The error for a server that did not answer within [`CONNECT_TIMEOUT`].
fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "no answer from the server",
    ))
}

/// A connection of one batch writer's own. From a pool, each batch would cost a round trip
/// more: sqlx pings a connection as it goes back to its pool. This one is pinged only when
/// its last use failed (or did not finish) or it sat idle for [`PING_WHEN_IDLE_FOR`], and
/// replaced when the ping fails (the server restarted, a proxy dropped it...).
#[derive(Debug, Clone)]
pub(super) struct WriterConnection {
    options: PgConnectOptions,
    slot: Arc<tokio::sync::Mutex<Option<HeldConnection>>>,
}

/// The writer's connection between uses.
#[derive(Debug)]
pub(super) struct HeldConnection {
    connection: PgConnection,
    last_used: Instant,
    /// Its last use did not end in success (a failed write, or a request cancelled
    /// midway): the connection may be broken, or still in the middle of a statement.
    suspect: bool,
}

impl WriterConnection {
    /// A writer that connects with `options` on first use.
    fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            slot: Arc::default(),
        }
    }

    /// Waits for the connection (the writer's previous batch), checking it or connecting
    /// anew when needed.
    pub(super) async fn acquire(&self) -> Result<WriterGuard, sqlx::Error> {
        let slot = Arc::clone(&self.slot).lock_owned().await;
        self.ready(slot).await
    }

    /// The connection, if no one holds it.
    async fn try_acquire(&self) -> Option<Result<WriterGuard, sqlx::Error>> {
        let slot = Arc::clone(&self.slot).try_lock_owned().ok()?;
        Some(self.ready(slot).await)
    }

    /// The connection in `slot`, checked or replaced.
    async fn ready(
        &self,
        mut slot: tokio::sync::OwnedMutexGuard<Option<HeldConnection>>,
    ) -> Result<WriterGuard, sqlx::Error> {
        let kept = match slot.take() {
            Some(held) if !held.suspect && held.last_used.elapsed() < PING_WHEN_IDLE_FOR => {
                Some(held)
            }
            // The ping also finishes what a cancelled use left behind (sqlx reads the rest
            // of its answers and sends the rollback of a dropped transaction).
            Some(mut held) => match held.connection.ping().await {
                Ok(()) => Some(held),
                Err(error) => {
                    tracing::debug!(%error, "replacing a broken writer connection");
                    None
                }
            },
            None => None,
        };
        let held = match kept {
            Some(held) => held,
            None => HeldConnection {
                connection: tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    PgConnection::connect_with(&self.options),
                )
                .await
                .map_err(|_| timed_out())??,
                last_used: Instant::now(),
                suspect: false,
            },
        };
        // Until `written` says the use succeeded: a request may be cancelled midway.
        *slot = Some(HeldConnection {
            suspect: true,
            ..held
        });
        let guard = tokio::sync::OwnedMutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| sqlx::Error::PoolClosed)?;
        Ok(WriterGuard(guard))
    }
}

/// Connections of the store's own for writes that run side by side, each request on one
/// (code exchanges): a pool without its ping of each connection that comes back.
#[derive(Debug, Clone)]
pub(super) struct DirectConnections {
    each: Arc<[WriterConnection]>,
    next: Arc<AtomicUsize>,
}

impl DirectConnections {
    /// `count` connections (at least one), each made with `options` on first use.
    fn new(options: &PgConnectOptions, count: usize) -> Self {
        Self {
            each: (0..count.max(1))
                .map(|_| WriterConnection::new(options.clone()))
                .collect(),
            next: Arc::default(),
        }
    }

    /// A free connection, or else waits for one, taking turns.
    pub(super) async fn acquire(&self) -> Result<WriterGuard, sqlx::Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.each.len();
        for offset in 0..count {
            if let Some(guard) = self.each[(start + offset) % count].try_acquire().await {
                return guard;
            }
        }
        self.each[start % count].acquire().await
    }
}

/// A writer's connection, held until dropped.
pub(super) struct WriterGuard(
    tokio::sync::OwnedMappedMutexGuard<Option<HeldConnection>, HeldConnection>,
);

/// After a failed write (or none noted), the connection is checked before its next use.
impl BatchConnection for WriterGuard {
    fn written<R>(&mut self, results: &[StoreResult<R>]) {
        self.0.suspect = results.iter().any(Result::is_err);
    }
}

impl Deref for WriterGuard {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.0.connection
    }
}

impl DerefMut for WriterGuard {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0.connection
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.0.last_used = Instant::now();
    }
}

/// Listens for the triggers' notifications and publishes them, reconnecting after a
/// failure; the feed is not live while disconnected.
async fn listen(pool: PgPool, feed: ChangeFeed) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    feed.set_live(true);
                    relay(&mut listener, &feed).await;
                }
                Err(error) => tracing::warn!(%error, "cannot listen for token changes"),
            },
            Err(error) => tracing::warn!(%error, "cannot connect to listen for token changes"),
        }
        feed.set_live(false);
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Publishes notifications as they come, and answers the feed's rounds, until the
/// connection fails.
async fn relay(listener: &mut PgListener, feed: &ChangeFeed) {
    loop {
        tokio::select! {
            // Both are cancel-safe: a message half read stays buffered in the connection.
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    feed.publish(parse_notification(notification.payload()));
                }
                _ => return,
            },
            round = feed.next_round() => {
                // Before it answers, the server sends every notification committed before
                // the query came; the connection buffers those that arrive meanwhile.
                if round_trip(listener).await.is_err() {
                    return;
                }
                while let Some(notification) = listener.next_buffered() {
                    feed.publish(parse_notification(notification.payload()));
                }
                feed.end_round(round);
            }
        }
    }
}

/// One query on the listening connection (a boxed future, whose type spares `spawn`
/// a proof that it is `Send` for every lifetime).
async fn round_trip(listener: &mut PgListener) -> sqlx::Result<()> {
    Executor::execute(listener, "SELECT 1").await.map(drop)
}

/// New tokens as one array per column, bound as nine parameters in the order of
/// [`new_token_table`]'s columns.
struct TokenColumns<'a> {
    access_token_hash: Vec<&'a [u8]>,
    refresh_token_hash: Vec<Option<&'a [u8]>>,
    user_id: Vec<Option<i64>>,
    client_id: Vec<i64>,
    code_id: Vec<Option<i64>>,
    scopes: Vec<String>,
    issued_at: Vec<i64>,
    expires_at: Vec<i64>,
    refresh_family: Vec<Option<&'a str>>,
}

impl<'a> TokenColumns<'a> {
    fn new(tokens: impl ExactSizeIterator<Item = &'a NewToken>) -> Self {
        let count = tokens.len();
        let mut columns = Self {
            access_token_hash: Vec::with_capacity(count),
            refresh_token_hash: Vec::with_capacity(count),
            user_id: Vec::with_capacity(count),
            client_id: Vec::with_capacity(count),
            code_id: Vec::with_capacity(count),
            scopes: Vec::with_capacity(count),
            issued_at: Vec::with_capacity(count),
            expires_at: Vec::with_capacity(count),
            refresh_family: Vec::with_capacity(count),
        };
        for token in tokens {
            columns
                .access_token_hash
                .push(token.access_token_hash.as_bytes());
            columns
                .refresh_token_hash
                .push(token.refresh_token_hash.as_ref().map(|h| h.as_bytes()));
            columns.user_id.push(token.user_id);
            columns.client_id.push(token.client_id);
            columns.code_id.push(token.code_id);
            columns.scopes.push(token.scopes.to_string());
            columns.issued_at.push(token.issued_at.unix_timestamp());
            columns.expires_at.push(token.expires_at.unix_timestamp());
            columns.refresh_family.push(token.refresh_family.as_deref());
        }
        columns
    }

    /// Binds the nine arrays after whatever `query` has bound.
    fn bind<'q, O>(
        self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.access_token_hash)
            .bind(self.refresh_token_hash)
            .bind(self.user_id)
            .bind(self.client_id)
            .bind(self.code_id)
            .bind(self.scopes)
            .bind(self.issued_at)
            .bind(self.expires_at)
            .bind(self.refresh_family)
    }
}

impl_store!(PostgresStore, sqlx::Postgres, Backend::Postgres);
impl_admin_store!(PostgresStore, sqlx::Postgres);
