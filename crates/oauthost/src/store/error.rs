//! The store's error type.

/// What can go wrong in the store.
///
/// `Database` and `Migrate` carry driver text meant for operators (logs, the command line);
/// the HTTP layer never shows it to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken.
    #[error("{what} {value:?} already exists")]
    Duplicate {
        /// What kind of value (`"client title"`, `"username"`...).
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A referenced record does not exist.
    #[error("unknown {what} {value:?}")]
    NotFound {
        /// What kind of record.
        what: &'static str,
        /// The value looked for.
        value: String,
    },
    /// A change that would break a rule the data keeps; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The database URL cannot be used.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, with any password removed.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the database {url:?}: {source}")]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database has migrations that were not applied.
    #[error(
        "the database schema is out of date ({count} pending migration(s)): run `migrate` first"
    )]
    MigrationsPending {
        /// How many are pending.
        count: usize,
    },
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt value in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}
