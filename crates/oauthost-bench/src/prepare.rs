//! Preparing a database: a throw-away SQLite file or PostgreSQL schema, set up with the
//! `polls` commands as an operator would, then filled with tokens, codes and refresh
//! tokens in bulk. Every secret is stored as the server stores it: the SHA-256 hash of the
//! value (`Secret::hash`), so the values written to the load files are real credentials.

use std::{io::Write, path::Path, process::Stdio};

use oauthost::{core::secret::Secret, store::DynStore};
use sqlx::{Connection, PgConnection, PgPool, QueryBuilder, SqlitePool};
use tokio::process::Command;

use crate::BenchError;

/// The password of the benchmark user.
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// The benchmark client's identifier and secret.
pub(crate) const CLIENT_ID: &str = "bench";
/// The benchmark client's secret.
pub(crate) const CLIENT_SECRET: &str = "bench-secret-0123456789";
/// The redirect URI registered for the client.
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The scopes every prepared token and code carries.
pub(crate) const SCOPES: &str = "polls:index polls:detail";

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh schema in a PostgreSQL database.
    Postgres,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// A throw-away database.
#[derive(Debug)]
pub(crate) struct Database {
    /// The URL the server and the commands use.
    pub url: String,
    kind: Kind,
    pool: Pool,
    postgres: Option<(String, String)>,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Creates the database: a file in `dir`, or a new schema in `postgres_url`.
    pub(crate) async fn create(
        kind: Kind,
        dir: &Path,
        postgres_url: &str,
    ) -> Result<Self, BenchError> {
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.join("bench.db").display());
                // Created by `polls migrate`; the pool connects once the file exists.
                Ok(Self {
                    pool: Pool::Sqlite(SqlitePool::connect_lazy(&format!("{url}?mode=rwc"))?),
                    url,
                    kind,
                    postgres: None,
                })
            }
            Kind::Postgres => {
                let schema = format!("oauthost_bench_{}", std::process::id());
                let mut conn = PgConnection::connect(postgres_url).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                let separator = if postgres_url.contains('?') { '&' } else { '?' };
                let url = format!("{postgres_url}{separator}options=-c%20search_path%3D{schema}");
                Ok(Self {
                    pool: Pool::Postgres(PgPool::connect_lazy(&url)?),
                    url,
                    kind,
                    postgres: Some((postgres_url.to_owned(), schema)),
                })
            }
        }
    }

    /// Drops a PostgreSQL schema (a SQLite file goes with its folder).
    pub(crate) async fn drop(self) -> Result<(), BenchError> {
        if let Pool::Postgres(pool) = &self.pool {
            pool.close().await;
        }
        self.leftovers().clean().await
    }

    /// What [`drop`](Self::drop) would remove, for a run that fails before it can.
    pub(crate) fn leftovers(&self) -> Leftovers {
        Leftovers(self.postgres.clone())
    }

    /// Which database this is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Writes out what a preparation left in memory: PostgreSQL's dirty buffers (a
    /// `CHECKPOINT`), then the operating system's dirty pages (`sync`). Without it, the kernel
    /// writes the prepared rows back about 30 seconds after they were made, in the middle of
    /// the measurement that follows, whose commits then wait behind that write-back for the
    /// disk. Best effort: a role that may not run `CHECKPOINT` only gets a warning.
    pub(crate) async fn settle(&self) -> Result<(), BenchError> {
        if let Pool::Postgres(pool) = &self.pool {
            if let Err(error) = sqlx::query("CHECKPOINT").execute(pool).await {
                eprintln!("  warning: cannot run CHECKPOINT before measuring: {error}");
            }
        }
        let status = std::process::Command::new("sync").status()?;
        if !status.success() {
            eprintln!("  warning: sync failed before measuring ({status})");
        }
        Ok(())
    }

    /// How many tokens are stored.
    pub(crate) async fn count_tokens(&self) -> Result<i64, BenchError> {
        let query = "SELECT COUNT(*) FROM oauthost_tokens";
        let (count,): (i64,) = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(query).fetch_one(pool).await?,
            Pool::Postgres(pool) => sqlx::query_as(query).fetch_one(pool).await?,
        };
        Ok(count)
    }

    /// Inserts tokens in bulk, in batches of 500 rows, one transaction per 50,000.
    async fn insert_tokens(&self, rows: &[TokenRow]) -> Result<(), BenchError> {
        macro_rules! insert {
            ($pool:expr, $db:ty) => {{
                for big in rows.chunks(50_000) {
                    let mut tx = $pool.begin().await?;
                    for chunk in big.chunks(500) {
                        let mut query = QueryBuilder::<$db>::new(
                            "INSERT INTO oauthost_tokens (access_token_hash, refresh_token_hash, \
                             user_id, client_id, scopes, issued_at, expires_at, refresh_family) ",
                        );
                        query.push_values(chunk, |mut b, row| {
                            b.push_bind(row.access.clone())
                                .push_bind(row.refresh.clone())
                                .push_bind(row.user_id)
                                .push_bind(row.client_id)
                                .push_bind(SCOPES)
                                .push_bind(row.issued_at)
                                .push_bind(row.expires_at)
                                .push_bind(row.family.clone());
                        });
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => insert!(pool, sqlx::Sqlite),
            Pool::Postgres(pool) => insert!(pool, sqlx::Postgres),
        }
        Ok(())
    }

    /// Inserts authorization codes in bulk.
    async fn insert_codes(&self, rows: &[CodeRow]) -> Result<(), BenchError> {
        macro_rules! insert {
            ($pool:expr, $db:ty) => {{
                for big in rows.chunks(50_000) {
                    let mut tx = $pool.begin().await?;
                    for chunk in big.chunks(500) {
                        let mut query = QueryBuilder::<$db>::new(
                            "INSERT INTO oauthost_authorization_codes (code_hash, client_id, \
                             user_id, redirect_uri, redirect_uri_explicit, scopes, issued_at, \
                             expires_at) ",
                        );
                        query.push_values(chunk, |mut b, row| {
                            b.push_bind(row.hash.clone())
                                .push_bind(row.client_id)
                                .push_bind(row.user_id)
                                .push_bind(REDIRECT_URI)
                                .push_bind(false)
                                .push_bind(SCOPES)
                                .push_bind(row.issued_at)
                                .push_bind(row.expires_at);
                        });
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => insert!(pool, sqlx::Sqlite),
            Pool::Postgres(pool) => insert!(pool, sqlx::Postgres),
        }
        Ok(())
    }
}

/// A throw-away PostgreSQL schema to drop, if any: its database's URL and its name.
pub(crate) struct Leftovers(Option<(String, String)>);

impl Leftovers {
    /// Drops the schema.
    pub(crate) async fn clean(self) -> Result<(), BenchError> {
        if let Some((base, schema)) = &self.0 {
            let mut conn = PgConnection::connect(base).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

struct TokenRow {
    access: Vec<u8>,
    refresh: Option<Vec<u8>>,
    user_id: i64,
    client_id: i64,
    issued_at: i64,
    expires_at: i64,
    family: Option<String>,
}

struct CodeRow {
    hash: Vec<u8>,
    client_id: i64,
    user_id: i64,
    issued_at: i64,
    expires_at: i64,
}

/// Runs one `polls` command over `url`.
pub(crate) async fn polls_command(
    polls: &Path,
    url: &str,
    args: &[&str],
) -> Result<(), BenchError> {
    let output = Command::new(polls)
        .args(["--database-url", url, "--debug"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BenchError::Tool {
            tool: "polls",
            message: format!(
                "`polls {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// The benchmark's user and client, as the server knows them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixture {
    user_id: i64,
    client_id: i64,
}

/// Sets the database up as an operator would: `migrate`, `syncscopes polls`, a user and a
/// confidential client.
pub(crate) async fn set_up(polls: &Path, db: &Database) -> Result<Fixture, BenchError> {
    polls_command(polls, &db.url, &["migrate"]).await?;
    polls_command(polls, &db.url, &["syncscopes", "polls"]).await?;
    polls_command(
        polls,
        &db.url,
        &["user", "create", "alice", "--password", PASSWORD],
    )
    .await?;
    polls_command(
        polls,
        &db.url,
        &[
            "client",
            "register",
            "--title",
            "Benchmark client",
            "--id",
            CLIENT_ID,
            "--redirect-uri",
            REDIRECT_URI,
            "--owner",
            "alice",
            "--confidential",
            "--secret",
            CLIENT_SECRET,
            "--token-lifetime",
            "86400",
        ],
    )
    .await?;
    let store: DynStore = oauthost::store::connect(&db.url).await?;
    let user_id = store
        .find_user("alice")
        .await?
        .ok_or_else(|| BenchError::Setup("user alice missing".into()))?
        .id;
    let client_id = store
        .find_client(CLIENT_ID)
        .await?
        .ok_or_else(|| BenchError::Setup("client missing".into()))?
        .id;
    Ok(Fixture { user_id, client_id })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Fixture {
    fn token_row(&self, access: &Secret, refresh: Option<&Secret>) -> TokenRow {
        let issued_at = now();
        TokenRow {
            access: access.hash().as_bytes().to_vec(),
            refresh: refresh.map(|r| r.hash().as_bytes().to_vec()),
            user_id: self.user_id,
            client_id: self.client_id,
            issued_at,
            expires_at: issued_at + 86_400,
            family: refresh.map(|_| oauthost::core::secret::stamped_identifier()),
        }
    }

    /// Stores `count` valid access tokens of alice and returns their values.
    pub(crate) async fn access_tokens(
        &self,
        db: &Database,
        count: usize,
    ) -> Result<Vec<String>, BenchError> {
        let secrets: Vec<Secret> = (0..count).map(|_| Secret::generate_stamped()).collect();
        let rows: Vec<TokenRow> = secrets.iter().map(|s| self.token_row(s, None)).collect();
        db.insert_tokens(&rows).await?;
        Ok(secrets.iter().map(|s| s.expose().to_owned()).collect())
    }

    /// Stores valid tokens until the table holds `total`, in chunks (only their hashes
    /// are stored; the values are thrown away).
    pub(crate) async fn fill_tokens(&self, db: &Database, total: i64) -> Result<(), BenchError> {
        let mut missing = usize::try_from(total - db.count_tokens().await?).unwrap_or(0);
        while missing > 0 {
            let chunk = missing.min(100_000);
            let rows: Vec<TokenRow> = (0..chunk)
                .map(|_| self.token_row(&Secret::generate_stamped(), None))
                .collect();
            db.insert_tokens(&rows).await?;
            missing -= chunk;
        }
        Ok(())
    }

    /// Stores `count` tokens with refresh tokens, each in a family of its own, and writes
    /// one `refresh_token` grant request body per line to `file`.
    pub(crate) async fn refresh_bodies(
        &self,
        db: &Database,
        count: usize,
        file: &Path,
    ) -> Result<(), BenchError> {
        let pairs: Vec<(Secret, Secret)> = (0..count)
            .map(|_| (Secret::generate_stamped(), Secret::generate_stamped()))
            .collect();
        let rows: Vec<TokenRow> = pairs
            .iter()
            .map(|(a, r)| self.token_row(a, Some(r)))
            .collect();
        db.insert_tokens(&rows).await?;
        write_lines(
            file,
            pairs.iter().map(|(_, refresh)| {
                format!(
                    "grant_type=refresh_token&refresh_token={}",
                    refresh.expose()
                )
            }),
        )
    }

    /// Stores `count` authorization codes of alice for the client and writes one
    /// `authorization_code` grant request body per line to `file`.
    pub(crate) async fn code_bodies(
        &self,
        db: &Database,
        count: usize,
        file: &Path,
    ) -> Result<(), BenchError> {
        let codes: Vec<Secret> = (0..count).map(|_| Secret::generate_stamped()).collect();
        let issued_at = now();
        let rows: Vec<CodeRow> = codes
            .iter()
            .map(|code| CodeRow {
                hash: code.hash().as_bytes().to_vec(),
                client_id: self.client_id,
                user_id: self.user_id,
                issued_at,
                expires_at: issued_at + 3600,
            })
            .collect();
        db.insert_codes(&rows).await?;
        write_lines(
            file,
            codes
                .iter()
                .map(|code| format!("grant_type=authorization_code&code={}", code.expose())),
        )
    }
}

fn write_lines(file: &Path, lines: impl Iterator<Item = String>) -> Result<(), BenchError> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
