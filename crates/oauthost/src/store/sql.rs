//! The SQL shared by both backends.
//!
//! SQLite and PostgreSQL accept the same statements here: `$N` placeholders, `RETURNING`,
//! `ON CONFLICT`, `TRUE`/`FALSE`. [`impl_store!`] writes every storage trait for a backend
//! type that has a `pool` field of its database's pool type, the queues of its batch
//! writers (`token_writes`, `rotations`, `exchanges`; see [`batch`](super::batch)), the
//! methods `write_lock`, `exchange_writer`, `rotation_writer` and `new_token_writer`, and a
//! `MIGRATOR` static beside it, so each query exists once and both backends run exactly the
//! same logic.
//!
//! Only the two statements that write a batch of tokens differ, because PostgreSQL can take
//! a batch as one array per column: each backend has
//! `insert_rows(connection, &[&NewToken]) -> Result<StoredIds, sqlx::Error>` (insert
//! them all in one statement, returning their ids) and
//! `rotate_rows(connection, &[(i64, &NewToken)]) -> StoreResult<StoredIds>` (in one
//! transaction, mark each old token rotated and revoked if it was neither, and insert the
//! new token of each one so marked: the new tokens returned are exactly those whose old
//! token was rotated).

/// Waits for a turn on `lock`, when there is one (SQLite's writers take turns; see
/// `SqliteStore`).
pub(super) async fn take_turn(
    lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    match lock {
        Some(lock) => Some(lock.lock_owned().await),
        None => None,
    }
}

/// The ids `RETURNING` gave for newly inserted tokens, by access token hash (its order is
/// not promised). Only the id comes back from the database: the rest of each row is what
/// was sent, so the answer is built from the [`NewToken`](super::NewToken) itself.
pub(super) struct StoredIds(std::collections::HashMap<oauthost_core::secret::SecretHash, i64>);

impl StoredIds {
    /// From the `(id, access_token_hash)` rows of an insert.
    pub(super) fn new(rows: Vec<(i64, Vec<u8>)>) -> Self {
        let ids = rows.into_iter().filter_map(|(id, hash)| {
            Some((oauthost_core::secret::SecretHash::from_bytes(&hash)?, id))
        });
        Self(ids.collect())
    }

    /// `new` as stored; an error if the insert did not return its row.
    pub(super) fn token(&mut self, new: &super::NewToken) -> super::StoreResult<super::Token> {
        self.take(new).ok_or_else(not_returned)
    }

    /// `new` as stored, if the insert returned its row.
    pub(super) fn take(&mut self, new: &super::NewToken) -> Option<super::Token> {
        self.0
            .remove(&new.access_token_hash)
            .map(|id| new.stored(id))
    }
}

/// The answer for a stored row that `RETURNING` did not give back.
pub(super) fn not_returned() -> super::StoreError {
    super::StoreError::Corrupt {
        table: "oauthost_tokens",
        reason: "a stored token was not returned".into(),
    }
}

/// One failure per item of a batch that could not start (its connection could not be
/// had), each with the same description.
pub(super) fn failed_each<R>(error: &sqlx::Error, items: usize) -> Vec<super::StoreResult<R>> {
    let reason = error.to_string();
    (0..items)
        .map(|_| {
            Err(super::StoreError::Database(sqlx::Error::Io(
                std::io::Error::other(reason.clone()),
            )))
        })
        .collect()
}

/// A connection a batch writer holds for one batch, told how the batch went.
pub(super) trait BatchConnection {
    /// Notes the batch's `results`; nothing by default.
    fn written<R>(&mut self, _results: &[super::StoreResult<R>]) {}
}

/// A pool checks its connections itself (it pings each on its way back).
impl<DB: sqlx::Database> BatchConnection for sqlx::pool::PoolConnection<DB> {}

/// Starts the writer task of a [`WriteQueue`](super::batch::WriteQueue): for each batch, it
/// waits for the turn to write on `$lock` (see [`take_turn`]), then for a connection of
/// `$writer` (anything with an `acquire()` giving one), and calls `$write(connection, items)`.
macro_rules! batch_writer {
    ($writer:expr, $lock:expr, $write:path) => {{
        let writer = $writer;
        let lock = $lock;
        $crate::store::batch::WriteQueue::start(move |items| {
            let writer = writer.clone();
            let lock = lock.clone();
            async move {
                let _writing = take_turn(lock).await;
                match writer.acquire().await {
                    Ok(mut connection) => {
                        let results = $write(&mut connection, items).await;
                        $crate::store::sql::BatchConnection::written(&mut connection, &results);
                        results
                    }
                    Err(error) => failed_each(&error, items.len()),
                }
            }
        })
    }};
}

/// Implements every storage trait and [`Store`](super::Store) for `$store`.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr) => {
        const _: () = {
            use std::collections::HashSet;

            use async_trait::async_trait;
            use oauthost_core::{scope::ScopeId, secret::SecretHash};
            use sqlx::migrate::Migrate as _;
            use time::OffsetDateTime;

            use $crate::store::{
                batch::{answering, CodeExchangeJob},
                sql::{failed_each, take_turn, BatchConnection},
                rows::{
                    client_columns, code_columns, duplicate_or, new_token_columns, scope_columns, token_columns,
                    user_columns, ClientRow, ClientSummaryRow, CodeRow, ScopeRow, SessionRow, TokenDetailsRow,
                    TokenRow, UserCredentialsRow, UserRow,
                },
                AuthorizationCode, Backend, Client, ClientStore, ClientSummary, CodeCheck, CodeExchange,
                CodeStore, MigrationInfo, NewAuthorizationCode, NewClient, NewScope, NewToken,
                NewUser, PurgeReport, PurgeStore, Scope, ScopeStore, SessionRecord, LoginThrottleStore, SessionStore, Store, StoreError,
                StoreResult, Token, TokenDetails, TokenStore, User, UserStore,
            };

            impl $store {
                /// Waits for this store's turn to write, if its database needs writers to
                /// take turns; the write ends when the guard is dropped.
                async fn writing(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
                    take_turn(self.write_lock()).await
                }

                /// Stores `tokens` in one statement, answering for each in its order; if
                /// that fails (a client deleted meanwhile, say), each is stored alone so that
                /// only the faulty ones fail.
                async fn insert_tokens(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    tokens: Vec<NewToken>,
                ) -> Vec<StoreResult<Token>> {
                    if let [token] = tokens.as_slice() {
                        return vec![Self::insert_token_with(&mut *connection, token).await];
                    }
                    let all: Vec<&NewToken> = tokens.iter().collect();
                    let mut stored = match Self::insert_rows(&mut *connection, &all).await {
                        Ok(stored) => stored,
                        Err(_) => {
                            let mut stored = Vec::with_capacity(tokens.len());
                            for token in &tokens {
                                stored.push(Self::insert_token_with(&mut *connection, token).await);
                            }
                            return stored;
                        }
                    };
                    tokens.iter().map(|token| stored.token(token)).collect()
                }

                /// Rotates each `(old id, new token)` pair as [`rotate_one`](Self::rotate_one)
                /// would, all in one transaction (the backend's `rotate_rows`), answering for
                /// each in its order. Only the first of several rotations of
                /// one token can succeed: the others are answered `None` at once. If the
                /// transaction fails (a client deleted meanwhile, PostgreSQL finding a
                /// deadlock with another instance's batch...), each is rotated alone.
                async fn rotate_tokens(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    rotations: Vec<(i64, NewToken)>,
                ) -> Vec<StoreResult<Option<Token>>> {
                    if let [(old_id, new)] = rotations.as_slice() {
                        return vec![Self::rotate_one(&mut *connection, *old_id, new).await];
                    }
                    let mut seen = HashSet::new();
                    let first: Vec<bool> = rotations.iter().map(|(old_id, _)| seen.insert(*old_id)).collect();
                    let fresh: Vec<(i64, &NewToken)> = rotations
                        .iter()
                        .zip(&first)
                        .filter(|(_, first)| **first)
                        .map(|((old_id, new), _)| (*old_id, new))
                        .collect();
                    match Self::rotate_rows(&mut *connection, &fresh).await {
                        // A new token came back exactly where its old one was rotated.
                        Ok(mut stored) => rotations
                            .iter()
                            .zip(&first)
                            .map(|((_, new), first)| Ok(if *first { stored.take(new) } else { None }))
                            .collect(),
                        Err(_) => {
                            let mut rotated = Vec::with_capacity(rotations.len());
                            for (old_id, new) in &rotations {
                                rotated.push(Self::rotate_one(&mut *connection, *old_id, new).await);
                            }
                            rotated
                        }
                    }
                }

                /// Rotates the refresh token `old_id` (marks it rotated and revoked) and
                /// stores `new` in its place, in one round trip, if it was neither rotated nor
                /// revoked; `None` otherwise. Only one of concurrent rotations finds the old
                /// token unrotated: PostgreSQL's row lock makes the others wait and then see
                /// it rotated; SQLite writes one at a time.
                async fn rotate_one(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    old_id: i64,
                    new: &NewToken,
                ) -> StoreResult<Option<Token>> {
                    // The new row is inserted only if the old one was rotated.
                    const ROTATE: &str = "UPDATE oauthost_tokens SET refresh_rotated = TRUE, revoked = TRUE \
                         WHERE id = $1 AND refresh_rotated = FALSE AND revoked = FALSE";
                    const INSERT: &str = concat!(
                        "INSERT INTO oauthost_tokens (",
                        new_token_columns!(),
                        ") SELECT $2, $3, 'bearer', $4, $5, $6, $7, $8, $9, $10"
                    );
                    // Written once per backend (each expansion of this function has its own).
                    static STATEMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                    let statement = STATEMENT.get_or_init(|| match $backend {
                        // A data-modifying WITH: one atomic statement.
                        Backend::Postgres => format!(
                            "WITH rotated AS ({ROTATE} RETURNING id) {INSERT} FROM rotated RETURNING {}",
                            token_columns!()
                        ),
                        // Two statements sent together, in one transaction (below);
                        // `changes()` is the number of rows the UPDATE changed.
                        Backend::Sqlite => format!(
                            "{ROTATE}; {INSERT} WHERE changes() = 1 RETURNING {}",
                            token_columns!()
                        ),
                    });
                    let query = Self::bind_new_token(
                        sqlx::query_as::<_, TokenRow>(statement).bind(old_id),
                        new,
                    );
                    let row = match $backend {
                        Backend::Postgres => query.fetch_optional(&mut *connection).await?,
                        Backend::Sqlite => {
                            let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                            let row = query.fetch_optional(&mut *tx).await?;
                            tx.commit().await?;
                            row
                        }
                    };
                    row.map(TryInto::try_into).transpose()
                }

                /// Exchanges one code through `connection`, in a transaction: consumes it,
                /// asks its request for the token to issue and stores that token.
                async fn exchange_one(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    job: &CodeExchangeJob,
                ) -> StoreResult<CodeExchange> {
                    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                    // One conditional UPDATE: the row lock (PostgreSQL) or the write lock
                    // (SQLite) lets exactly one of concurrent exchanges see `consumed = FALSE`,
                    // and the others wait until its token is committed.
                    let consumed: Option<CodeRow> = sqlx::query_as(concat!(
                        "UPDATE oauthost_authorization_codes SET consumed = TRUE \
                         WHERE code_hash = $1 AND client_id = $2 AND consumed = FALSE RETURNING ",
                        code_columns!()
                    ))
                    .bind(job.code_hash.as_bytes())
                    .bind(job.client_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = consumed else {
                        let existing: Option<CodeRow> = sqlx::query_as(concat!(
                            "SELECT ", code_columns!(),
                            " FROM oauthost_authorization_codes WHERE code_hash = $1 AND client_id = $2"
                        ))
                        .bind(job.code_hash.as_bytes())
                        .bind(job.client_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        tx.rollback().await?;
                        return Ok(match existing {
                            Some(row) => CodeExchange::AlreadyUsed(row.try_into()?),
                            None => CodeExchange::Unknown,
                        });
                    };
                    let code: AuthorizationCode = row.try_into()?;
                    let outcome = match job.ask(&code).await {
                        Ok(mut token) => {
                            token.code_id = Some(code.id);
                            CodeExchange::Issued(Self::insert_token_with(&mut *tx, &token).await?)
                        }
                        Err(error) => CodeExchange::Refused(error),
                    };
                    tx.commit().await?;
                    Ok(outcome)
                }

                /// Exchanges each code of `jobs` as [`exchange_one`](Self::exchange_one)
                /// would, in one transaction when there are several (see
                /// [`exchange_together`](Self::exchange_together)), answering for each in
                /// its order; if that transaction fails, each is exchanged alone.
                async fn exchange_codes(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    jobs: Vec<CodeExchangeJob>,
                ) -> Vec<StoreResult<CodeExchange>> {
                    if jobs.len() > 1 {
                        if let Ok(outcomes) = Self::exchange_together(&mut *connection, &jobs).await {
                            return outcomes.into_iter().map(Ok).collect();
                        }
                    }
                    let mut outcomes = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        outcomes.push(Self::exchange_one(&mut *connection, job).await);
                    }
                    outcomes
                }

                /// Pushes `(code_hash = $ AND client_id = $) OR ...` for `jobs`.
                fn push_code_keys<'j>(
                    query: &mut sqlx::QueryBuilder<'j, $db>,
                    jobs: impl Iterator<Item = &'j CodeExchangeJob>,
                ) {
                    for (n, job) in jobs.enumerate() {
                        query.push(if n == 0 { "(code_hash = " } else { " OR (code_hash = " });
                        query.push_bind(job.code_hash.as_bytes());
                        query.push(" AND client_id = ");
                        query.push_bind(job.client_id);
                        query.push(")");
                    }
                }

                /// The transaction of [`exchange_codes`](Self::exchange_codes): one
                /// `UPDATE` consumes the unused codes (the first request presenting each gets
                /// it), one `SELECT` tells the others' codes used from unknown, one `INSERT`
                /// stores the tokens their requests' checks return.
                async fn exchange_together(
                    connection: &mut <$db as sqlx::Database>::Connection,
                    jobs: &[CodeExchangeJob],
                ) -> StoreResult<Vec<CodeExchange>> {
                    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                    let mut update = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE oauthost_authorization_codes SET consumed = TRUE \
                         WHERE consumed = FALSE AND (",
                    );
                    Self::push_code_keys(&mut update, jobs.iter());
                    update.push(concat!(") RETURNING ", code_columns!()));
                    let rows: Vec<CodeRow> = update.build_query_as().fetch_all(&mut *tx).await?;
                    let mut consumed = std::collections::HashMap::new();
                    for row in rows {
                        let code: AuthorizationCode = row.try_into()?;
                        consumed.insert((code.code_hash, code.client_id), code);
                    }
                    // Ask every request whose code was consumed at once, then wait for each.
                    let asked: Vec<_> = jobs
                        .iter()
                        .enumerate()
                        .filter_map(|(n, job)| {
                            let code = consumed.remove(&(job.code_hash, job.client_id))?;
                            Some((n, code))
                        })
                        .collect();
                    let waiting: Vec<_> = asked.iter().map(|(n, code)| jobs[*n].ask(code)).collect();
                    let mut answers = Vec::with_capacity(waiting.len());
                    for answer in waiting {
                        answers.push(answer.await);
                    }
                    let mut outcomes: Vec<Option<CodeExchange>> = vec![None; jobs.len()];
                    let mut tokens = Vec::new();
                    for ((n, code), answer) in asked.iter().zip(answers) {
                        match answer {
                            Ok(mut token) => {
                                token.code_id = Some(code.id);
                                tokens.push((*n, token));
                            }
                            Err(error) => outcomes[*n] = Some(CodeExchange::Refused(error)),
                        }
                    }
                    let issuing: HashSet<usize> = tokens.iter().map(|(n, _)| *n).collect();
                    let others: Vec<usize> = (0..jobs.len())
                        .filter(|n| outcomes[*n].is_none() && !issuing.contains(n))
                        .collect();
                    if !others.is_empty() {
                        let mut select = sqlx::QueryBuilder::<$db>::new(concat!(
                            "SELECT ", code_columns!(), " FROM oauthost_authorization_codes WHERE "
                        ));
                        Self::push_code_keys(&mut select, others.iter().map(|n| &jobs[*n]));
                        let rows: Vec<CodeRow> = select.build_query_as().fetch_all(&mut *tx).await?;
                        let mut existing = std::collections::HashMap::new();
                        for row in rows {
                            let code: AuthorizationCode = row.try_into()?;
                            existing.insert((code.code_hash, code.client_id), code);
                        }
                        for n in others {
                            let job = &jobs[n];
                            outcomes[n] = Some(match existing.get(&(job.code_hash, job.client_id)) {
                                Some(code) => CodeExchange::AlreadyUsed(code.clone()),
                                None => CodeExchange::Unknown,
                            });
                        }
                    }
                    if !tokens.is_empty() {
                        let new: Vec<&NewToken> = tokens.iter().map(|(_, token)| token).collect();
                        let mut stored = Self::insert_rows(&mut *tx, &new).await?;
                        for (n, token) in &tokens {
                            outcomes[*n] = Some(CodeExchange::Issued(stored.token(token)?));
                        }
                    }
                    tx.commit().await?;
                    outcomes
                        .into_iter()
                        .map(|outcome| outcome.ok_or_else(|| StoreError::Refused("a code exchange was left unanswered".into())))
                        .collect()
                }

                /// Binds a new token's nine columns, in the order of the `INSERT`s' column lists
                /// (`access_token_hash` … `refresh_family`), after whatever `query` has bound.
                fn bind_new_token<'q, O>(
                    query: sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments<'q>>,
                    token: &'q NewToken,
                ) -> sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments<'q>> {
                    query
                        .bind(token.access_token_hash.as_bytes())
                        .bind(token.refresh_token_hash.as_ref().map(|h| h.as_bytes()))
                        .bind(token.user_id)
                        .bind(token.client_id)
                        .bind(token.code_id)
                        .bind(token.scopes.to_string())
                        .bind(token.issued_at.unix_timestamp())
                        .bind(token.expires_at.unix_timestamp())
                        .bind(&token.refresh_family)
                }

                /// Stores a token through `executor` (the pool, or a transaction).
                async fn insert_token_with<'c, E>(executor: E, token: &NewToken) -> StoreResult<Token>
                where
                    E: sqlx::Executor<'c, Database = $db>,
                {
                    let query = sqlx::query_as(concat!(
                        "INSERT INTO oauthost_tokens (",
                        new_token_columns!(),
                        ") VALUES ($1, $2, 'bearer', $3, $4, $5, $6, $7, $8, $9) RETURNING ",
                        token_columns!()
                    ));
                    let row: TokenRow = Self::bind_new_token(query, token)
                    .fetch_one(executor)
                    .await?;
                    row.try_into()
                }
            }

            #[async_trait]
            impl UserStore for $store {
                async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User> {
                    let _writing = self.writing().await;
                    let row: UserRow = sqlx::query_as(concat!(
                        "INSERT INTO oauthost_users \
                         (username, password_hash, is_staff, is_active, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING ",
                        user_columns!()
                    ))
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.is_staff)
                    .bind(user.is_active)
                    .bind(now.unix_timestamp())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| duplicate_or(e, "username", &user.username))?;
                    row.try_into()
                }

                async fn find_user(&self, username: &str) -> StoreResult<Option<User>> {
                    let row: Option<UserRow> = sqlx::query_as(concat!(
                        "SELECT ", user_columns!(), " FROM oauthost_users WHERE username = $1"
                    ))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
                    let row: Option<UserRow> = sqlx::query_as(concat!(
                        "SELECT ", user_columns!(), " FROM oauthost_users WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn find_user_credentials(
                    &self,
                    username: &str,
                ) -> StoreResult<Option<(User, Option<String>)>> {
                    let row: Option<UserCredentialsRow> = sqlx::query_as(concat!(
                        "SELECT ", user_columns!(),
                        ", password_hash FROM oauthost_users WHERE username = $1"
                    ))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|row| Ok((row.user.try_into()?, row.password_hash)))
                        .transpose()
                }

                async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("UPDATE oauthost_users SET is_active = $2 WHERE id = $1")
                        .bind(id)
                        .bind(active)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn list_users(&self) -> StoreResult<Vec<User>> {
                    let rows: Vec<UserRow> = sqlx::query_as(concat!(
                        "SELECT ", user_columns!(), " FROM oauthost_users ORDER BY username"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }
            }

            #[async_trait]
            impl ScopeStore for $store {
                async fn create_scope(&self, scope: NewScope) -> StoreResult<Scope> {
                    let _writing = self.writing().await;
                    let row: ScopeRow = sqlx::query_as(concat!(
                        "INSERT INTO oauthost_scopes (identifier, title, enabled) \
                         VALUES ($1, $2, $3) RETURNING ",
                        scope_columns!()
                    ))
                    .bind(scope.identifier.as_str())
                    .bind(&scope.title)
                    .bind(scope.enabled)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| duplicate_or(e, "scope", scope.identifier.as_str()))?;
                    row.try_into()
                }

                async fn find_scope(&self, identifier: &ScopeId) -> StoreResult<Option<Scope>> {
                    let row: Option<ScopeRow> = sqlx::query_as(concat!(
                        "SELECT ", scope_columns!(), " FROM oauthost_scopes WHERE identifier = $1"
                    ))
                    .bind(identifier.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn list_scopes(&self) -> StoreResult<Vec<Scope>> {
                    let rows: Vec<ScopeRow> = sqlx::query_as(concat!(
                        "SELECT ", scope_columns!(),
                        " FROM oauthost_scopes ORDER BY title, identifier"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }
            }

            #[async_trait]
            impl ClientStore for $store {
                async fn register_client(
                    &self,
                    client: NewClient,
                    now: OffsetDateTime,
                ) -> StoreResult<Client> {
                    let _writing = self.writing().await;
                    let mut tx = self.pool.begin().await?;

                    // Look before writing, to name the conflict clearly; the unique
                    // constraints still guard against a concurrent registration.
                    let taken: Option<(String, String)> = sqlx::query_as(
                        "SELECT title, identifier FROM oauthost_clients \
                         WHERE title = $1 OR identifier = $2 LIMIT 1",
                    )
                    .bind(&client.title)
                    .bind(&client.identifier)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((title, _)) = taken {
                        return Err(if title == client.title {
                            StoreError::Duplicate { what: "client title", value: title }
                        } else {
                            StoreError::Duplicate {
                                what: "client identifier",
                                value: client.identifier.clone(),
                            }
                        });
                    }
                    let registrant: Option<(i64,)> =
                        sqlx::query_as("SELECT id FROM oauthost_users WHERE id = $1")
                            .bind(client.registrant_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if registrant.is_none() {
                        return Err(StoreError::NotFound {
                            what: "registrant",
                            value: client.registrant_id.to_string(),
                        });
                    }

                    let mut scope_ids = Vec::with_capacity(client.scopes.len());
                    for scope in &client.scopes {
                        let existing: Option<(i64,)> =
                            sqlx::query_as("SELECT id FROM oauthost_scopes WHERE identifier = $1")
                                .bind(scope.as_str())
                                .fetch_optional(&mut *tx)
                                .await?;
                        let id = match existing {
                            Some((id,)) => id,
                            None if client.register_unknown_scopes => {
                                let (id,): (i64,) = sqlx::query_as(
                                    "INSERT INTO oauthost_scopes (identifier, title, enabled) \
                                     VALUES ($1, $2, TRUE) RETURNING id",
                                )
                                .bind(scope.as_str())
                                .bind(scope.default_title())
                                .fetch_one(&mut *tx)
                                .await?;
                                id
                            }
                            None => {
                                return Err(StoreError::NotFound {
                                    what: "scope",
                                    value: scope.to_string(),
                                })
                            }
                        };
                        scope_ids.push(id);
                    }

                    let row: ClientRow = sqlx::query_as(concat!(
                        "INSERT INTO oauthost_clients (identifier, title, secret_hash, \
                         client_type, registrant_id, description, link, token_lifetime, \
                         hash_sign_supported, grant_types, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
                        client_columns!()
                    ))
                    .bind(&client.identifier)
                    .bind(&client.title)
                    .bind(client.secret_hash.as_ref().map(|h| h.as_bytes()))
                    .bind(client.client_type.as_str())
                    .bind(client.registrant_id)
                    .bind(&client.description)
                    .bind(&client.link)
                    .bind(client.token_lifetime)
                    .bind(client.hash_sign_supported)
                    .bind(client.grant_types.to_string())
                    .bind(now.unix_timestamp())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| duplicate_or(e, "client", &client.title))?;
                    let registered: Client = row.try_into()?;

                    for uri in &client.redirect_uris {
                        sqlx::query(
                            "INSERT INTO oauthost_redirect_endpoints (client_id, uri) \
                             VALUES ($1, $2) ON CONFLICT (client_id, uri) DO NOTHING",
                        )
                        .bind(registered.id)
                        .bind(uri.as_str())
                        .execute(&mut *tx)
                        .await?;
                    }
                    for scope_id in scope_ids {
                        sqlx::query(
                            "INSERT INTO oauthost_client_scopes (client_id, scope_id) \
                             VALUES ($1, $2) ON CONFLICT (client_id, scope_id) DO NOTHING",
                        )
                        .bind(registered.id)
                        .bind(scope_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(registered)
                }

                async fn find_client(&self, identifier: &str) -> StoreResult<Option<Client>> {
                    let row: Option<ClientRow> = sqlx::query_as(concat!(
                        "SELECT ", client_columns!(),
                        " FROM oauthost_clients WHERE identifier = $1"
                    ))
                    .bind(identifier)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn find_client_by_key(&self, id: i64) -> StoreResult<Option<Client>> {
                    let row: Option<ClientRow> = sqlx::query_as(concat!(
                        "SELECT ", client_columns!(), " FROM oauthost_clients WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn list_clients(&self) -> StoreResult<Vec<ClientSummary>> {
                    let rows: Vec<ClientSummaryRow> = sqlx::query_as(
                        "SELECT c.id, c.identifier, c.title, c.secret_hash, c.client_type, \
                         c.registrant_id, c.description, c.link, c.token_lifetime, \
                         c.hash_sign_supported, c.grant_types, c.created_at, \
                         u.username AS registrant \
                         FROM oauthost_clients c JOIN oauthost_users u ON u.id = c.registrant_id \
                         ORDER BY c.title",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }

                async fn redirect_uris(&self, client_id: i64) -> StoreResult<Vec<String>> {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT uri FROM oauthost_redirect_endpoints \
                         WHERE client_id = $1 ORDER BY id",
                    )
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|(uri,)| uri).collect())
                }

                async fn client_scopes(&self, client_id: i64) -> StoreResult<Vec<Scope>> {
                    let rows: Vec<ScopeRow> = sqlx::query_as(
                        "SELECT s.id, s.identifier, s.title, s.enabled \
                         FROM oauthost_scopes s \
                         JOIN oauthost_client_scopes cs ON cs.scope_id = s.id \
                         WHERE cs.client_id = $1 ORDER BY s.title, s.identifier",
                    )
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }
            }

            #[async_trait]
            impl CodeStore for $store {
                async fn insert_code(
                    &self,
                    code: NewAuthorizationCode,
                ) -> StoreResult<AuthorizationCode> {
                    let _writing = self.writing().await;
                    let row: CodeRow = sqlx::query_as(concat!(
                        "INSERT INTO oauthost_authorization_codes (code_hash, client_id, \
                         user_id, redirect_uri, redirect_uri_explicit, scopes, code_challenge, \
                         code_challenge_method, issued_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ",
                        code_columns!()
                    ))
                    .bind(code.code_hash.as_bytes())
                    .bind(code.client_id)
                    .bind(code.user_id)
                    .bind(&code.redirect_uri)
                    .bind(code.redirect_uri_explicit)
                    .bind(code.scopes.to_string())
                    .bind(&code.code_challenge)
                    .bind(&code.code_challenge_method)
                    .bind(code.issued_at.unix_timestamp())
                    .bind(code.expires_at.unix_timestamp())
                    .fetch_one(&self.pool)
                    .await?;
                    row.try_into()
                }

                async fn exchange_code(
                    &self,
                    code_hash: &SecretHash,
                    client_id: i64,
                    check: CodeCheck<'_>,
                ) -> StoreResult<CodeExchange> {
                    let (questions, asked) = tokio::sync::mpsc::unbounded_channel();
                    let job = CodeExchangeJob { code_hash: *code_hash, client_id, questions: questions.clone() };
                    if matches!($backend, Backend::Postgres) {
                        // PostgreSQL runs concurrent exchanges side by side, one transaction
                        // each, where a queue would run them one batch at a time (measured
                        // slower; BENCHMARKS.md). The connection is told how it went: one
                        // left midway by a cancelled request is checked before its next use.
                        let mut connection = self.exchange_writer().acquire().await?;
                        let outcome = answering(Self::exchange_one(&mut connection, &job), asked, check).await;
                        BatchConnection::written(&mut connection, std::slice::from_ref(&outcome));
                        return outcome;
                    }
                    let queue = self.exchanges.get_or_init(|| {
                        $crate::store::sql::batch_writer!(self.exchange_writer().clone(), self.write_lock(), Self::exchange_codes)
                    });
                    let exchange = async {
                        match queue.write(job).await {
                            Some(outcome) => outcome,
                            // The writer task is gone: exchange here, asking the same way.
                            None => {
                                let _writing = self.writing().await;
                                let mut connection = self.exchange_writer().acquire().await?;
                                let job = CodeExchangeJob { code_hash: *code_hash, client_id, questions };
                                Self::exchange_one(&mut connection, &job).await
                            }
                        }
                    };
                    answering(exchange, asked, check).await
                }
            }

            #[async_trait]
            impl TokenStore for $store {
                async fn insert_token(&self, token: NewToken) -> StoreResult<Token> {
                    let queue = self.token_writes.get_or_init(|| {
                        $crate::store::sql::batch_writer!(self.new_token_writer().clone(), self.write_lock(), Self::insert_tokens)
                    });
                    match queue.write(token.clone()).await {
                        Some(stored) => stored,
                        None => {
                            let _writing = self.writing().await;
                            Self::insert_token_with(&self.pool, &token).await
                        }
                    }
                }

                async fn find_token(&self, access_hash: &SecretHash) -> StoreResult<Option<Token>> {
                    let row: Option<TokenRow> = sqlx::query_as(concat!(
                        "SELECT ", token_columns!(),
                        " FROM oauthost_tokens WHERE access_token_hash = $1"
                    ))
                    .bind(access_hash.as_bytes())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("UPDATE oauthost_tokens SET revoked = TRUE WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn find_token_details(
                    &self,
                    hash: &SecretHash,
                    by_refresh: bool,
                ) -> StoreResult<Option<TokenDetails>> {
                    macro_rules! details_by {
                        ($column:literal) => {
                            concat!(
                                "SELECT t.id, t.access_token_hash, t.refresh_token_hash, t.user_id, \
                                 t.client_id, t.code_id, t.scopes, t.issued_at, t.expires_at, \
                                 t.revoked, t.refresh_family, t.refresh_rotated, \
                                 c.identifier AS client_identifier, u.username, \
                                 COALESCE(u.is_active, t.user_id IS NULL) AS user_active \
                                 FROM oauthost_tokens t \
                                 JOIN oauthost_clients c ON c.id = t.client_id \
                                 LEFT JOIN oauthost_users u ON u.id = t.user_id \
                                 WHERE t.", $column, " = $1"
                            )
                        };
                    }
                    let query = if by_refresh {
                        details_by!("refresh_token_hash")
                    } else {
                        details_by!("access_token_hash")
                    };
                    let row: Option<TokenDetailsRow> = sqlx::query_as(query)
                        .bind(hash.as_bytes())
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn find_token_by_refresh(
                    &self,
                    refresh_hash: &SecretHash,
                ) -> StoreResult<Option<Token>> {
                    let row: Option<TokenRow> = sqlx::query_as(concat!(
                        "SELECT ", token_columns!(),
                        " FROM oauthost_tokens WHERE refresh_token_hash = $1"
                    ))
                    .bind(refresh_hash.as_bytes())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn rotate_token(&self, old_id: i64, new: NewToken) -> StoreResult<Option<Token>> {
                    let queue = self.rotations.get_or_init(|| {
                        $crate::store::sql::batch_writer!(self.rotation_writer().clone(), self.write_lock(), Self::rotate_tokens)
                    });
                    match queue.write((old_id, new.clone())).await {
                        Some(rotated) => rotated,
                        None => {
                            let _writing = self.writing().await;
                            let mut connection = self.rotation_writer().acquire().await?;
                            Self::rotate_one(&mut connection, old_id, &new).await
                        }
                    }
                }

                async fn revoke_family(&self, family: &str) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE oauthost_tokens SET revoked = TRUE \
                         WHERE refresh_family = $1 AND revoked = FALSE",
                    )
                    .bind(family)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn revoke_tokens_from_code(&self, code_id: i64) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE oauthost_tokens SET revoked = TRUE WHERE revoked = FALSE \
                         AND (code_id = $1 OR refresh_family IN \
                           (SELECT refresh_family FROM oauthost_tokens \
                            WHERE code_id = $1 AND refresh_family IS NOT NULL))",
                    )
                    .bind(code_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl SessionStore for $store {
                async fn load_session(
                    &self,
                    id_hash: &SecretHash,
                    now: OffsetDateTime,
                ) -> StoreResult<Option<SessionRecord>> {
                    let row: Option<SessionRow> = sqlx::query_as(
                        "SELECT id_hash, data, expires_at FROM oauthost_sessions \
                         WHERE id_hash = $1 AND expires_at > $2",
                    )
                    .bind(id_hash.as_bytes())
                    .bind(now.unix_timestamp())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn save_session(&self, session: &SessionRecord) -> StoreResult<()> {
                    let _writing = self.writing().await;
                    sqlx::query(
                        "INSERT INTO oauthost_sessions (id_hash, data, expires_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (id_hash) DO UPDATE \
                         SET data = excluded.data, expires_at = excluded.expires_at",
                    )
                    .bind(session.id_hash.as_bytes())
                    .bind(&session.data)
                    .bind(session.expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn delete_session(&self, id_hash: &SecretHash) -> StoreResult<()> {
                    let _writing = self.writing().await;
                    sqlx::query("DELETE FROM oauthost_sessions WHERE id_hash = $1")
                        .bind(id_hash.as_bytes())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait]
            impl LoginThrottleStore for $store {
                async fn record_login_failure(
                    &self,
                    key: &str,
                    now: OffsetDateTime,
                    window_start: OffsetDateTime,
                    max_failures: u32,
                    lock_until: OffsetDateTime,
                ) -> StoreResult<u32> {
                    let _writing = self.writing().await;
                    // One statement: concurrent failures on several instances all count.
                    let (failures,): (i64,) = sqlx::query_as(
                        "INSERT INTO oauthost_login_failures (key, failures, window_start, locked_until) \
                         VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $5 ELSE 0 END) \
                         ON CONFLICT (key) DO UPDATE SET \
                           failures = CASE WHEN oauthost_login_failures.window_start < $3 \
                             THEN 1 ELSE oauthost_login_failures.failures + 1 END, \
                           window_start = CASE WHEN oauthost_login_failures.window_start < $3 \
                             THEN $2 ELSE oauthost_login_failures.window_start END, \
                           locked_until = CASE WHEN (CASE WHEN oauthost_login_failures.window_start < $3 \
                             THEN 1 ELSE oauthost_login_failures.failures + 1 END) >= $4 \
                             THEN $5 ELSE oauthost_login_failures.locked_until END \
                         RETURNING failures",
                    )
                    .bind(key)
                    .bind(now.unix_timestamp())
                    .bind(window_start.unix_timestamp())
                    .bind(i64::from(max_failures))
                    .bind(lock_until.unix_timestamp())
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(u32::try_from(failures).unwrap_or(u32::MAX))
                }

                async fn login_locked_until(
                    &self,
                    key: &str,
                    now: OffsetDateTime,
                ) -> StoreResult<Option<OffsetDateTime>> {
                    let row: Option<(i64,)> = sqlx::query_as(
                        "SELECT locked_until FROM oauthost_login_failures \
                         WHERE key = $1 AND locked_until > $2",
                    )
                    .bind(key)
                    .bind(now.unix_timestamp())
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.and_then(|(until,)| OffsetDateTime::from_unix_timestamp(until).ok()))
                }

                async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
                    let _writing = self.writing().await;
                    sqlx::query("DELETE FROM oauthost_login_failures WHERE key = $1")
                        .bind(key)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait]
            impl PurgeStore for $store {
                async fn purge(
                    &self,
                    now: OffsetDateTime,
                    retain_until: OffsetDateTime,
                    window_start: OffsetDateTime,
                    batch: u32,
                ) -> StoreResult<PurgeReport> {
                    let _writing = self.writing().await;
                    let batch = i64::from(batch);
                    // Each statement deletes one bounded batch through the primary key, so
                    // no long lock is held while requests go on.
                    let codes = sqlx::query(
                        "DELETE FROM oauthost_authorization_codes WHERE id IN \
                         (SELECT id FROM oauthost_authorization_codes WHERE expires_at < $1 LIMIT $2)",
                    )
                    .bind(now.unix_timestamp())
                    .bind(batch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    let tokens = sqlx::query(
                        "DELETE FROM oauthost_tokens WHERE id IN \
                         (SELECT id FROM oauthost_tokens WHERE expires_at < $1 \
                          AND (refresh_token_hash IS NULL OR revoked = TRUE) LIMIT $2)",
                    )
                    .bind(retain_until.unix_timestamp())
                    .bind(batch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    let sessions = sqlx::query(
                        "DELETE FROM oauthost_sessions WHERE id_hash IN \
                         (SELECT id_hash FROM oauthost_sessions WHERE expires_at < $1 LIMIT $2)",
                    )
                    .bind(now.unix_timestamp())
                    .bind(batch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    let login_failures = sqlx::query(
                        "DELETE FROM oauthost_login_failures WHERE key IN \
                         (SELECT key FROM oauthost_login_failures \
                          WHERE window_start < $1 AND locked_until < $2 LIMIT $3)",
                    )
                    .bind(window_start.unix_timestamp())
                    .bind(now.unix_timestamp())
                    .bind(batch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(PurgeReport { codes, tokens, sessions, login_failures })
                }
            }

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> Backend {
                    $backend
                }

                fn change_feed(&self) -> Option<$crate::store::changes::ChangeFeed> {
                    Some(self.feed())
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }

                async fn migrate(&self) -> StoreResult<Vec<MigrationInfo>> {
                    let pending = self.pending_migrations().await?;
                    MIGRATOR.run(&self.pool).await?;
                    Ok(pending)
                }

                async fn pending_migrations(&self) -> StoreResult<Vec<MigrationInfo>> {
                    let mut conn = self.pool.acquire().await?;
                    conn.ensure_migrations_table().await?;
                    let applied: HashSet<i64> = conn
                        .list_applied_migrations()
                        .await?
                        .into_iter()
                        .map(|m| m.version)
                        .collect();
                    Ok(MIGRATOR
                        .iter()
                        .filter(|m| {
                            !m.migration_type.is_down_migration() && !applied.contains(&m.version)
                        })
                        .map(|m| MigrationInfo {
                            version: m.version,
                            description: m.description.to_string(),
                        })
                        .collect())
                }
            }
        };
    };
}

pub(super) use {batch_writer, impl_store};
