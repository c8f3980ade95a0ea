//! The PostgreSQL backend: for deployments where several server instances share state.

use std::{io, str::FromStr, time::Duration};

use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions},
    Connection,
};

use super::{admin_sql::impl_admin_store, redact_url, sql::impl_store, StoreError, StoreResult};

/// How long to wait for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
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
            .map_err(|_| {
                failed(sqlx::Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from the server",
                )))
            })?
            .map_err(failed)?;
        probe.close().await.map_err(failed)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// The connection pool, for an application that keeps tables of its own in the same
    /// database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_store!(PostgresStore, sqlx::Postgres, Backend::Postgres);
impl_admin_store!(PostgresStore, sqlx::Postgres);
