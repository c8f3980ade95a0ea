//! Test helpers shared by oauthost's test suites.
//!
//! [`TestDatabase`] is a throw-away database named by a URL, so that a test can open a
//! store on it or hand it to the `oauthost` binary:
//!
//! - SQLite: a file in a temporary folder, always available;
//! - PostgreSQL: a schema of its own in the database named by `OAUTHOST_TEST_POSTGRES_URL`,
//!   dropped afterwards, so that concurrent tests and runs never see each other's rows.
//!   When the variable is unset the PostgreSQL variant of a test is skipped, saying so; when
//!   it is set and the server cannot be reached, the test fails.
//!
//! [`backend_tests!`] runs each listed test function once per backend.

use std::{path::PathBuf, time::Duration};

use oauthost_core::secret::random_bytes;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "OAUTHOST_TEST_POSTGRES_URL";

/// Which database a [`TestDatabase`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL schema.
    Postgres,
}

/// A throw-away database.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: TestBackend,
    dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh SQLite file in a temporary folder (the file itself is not created yet).
    #[allow(clippy::expect_used)]
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("oauthost.db").display());
        Self {
            url,
            backend: TestBackend::Sqlite,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh, empty schema on the PostgreSQL server of `OAUTHOST_TEST_POSTGRES_URL`, or
    /// `None` (with a note on standard error) when the variable is unset.
    ///
    /// # Panics
    ///
    /// When the variable is set but the server cannot be reached: a configured backend
    /// that does not answer is a failure, never a silent skip.
    #[allow(clippy::expect_used, clippy::panic)]
    pub async fn postgres() -> Option<Self> {
        let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("note: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL variant");
            return None;
        };
        let schema = format!("oauthost_test_{}", hex(&random_bytes::<8>()));
        let mut conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&base))
            .await
            .unwrap_or_else(|_| panic!("{POSTGRES_URL_VAR}: connecting timed out"))
            .unwrap_or_else(|e| {
                panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
            });
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .expect("create a test schema");
        conn.close().await.ok();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            backend: TestBackend::Postgres,
            dir: None,
            postgres: Some((base, schema)),
        })
    }

    /// The database URL, for `oauthost::store::connect` or `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database this is.
    pub fn backend(&self) -> TestBackend {
        self.backend
    }

    /// A temporary folder that lives as long as this database (SQLite only).
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_owned())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside an async runtime: do the clean-up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs each named `async fn(&TestDatabase)` as two tests, `sqlite::NAME` and
/// `postgres::NAME`.
///
/// ```ignore
/// async fn creates_a_user(db: &TestDatabase) { /* ... */ }
/// oauthost_testkit::backend_tests!(creates_a_user);
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDatabase::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

/// A server process started for a test, killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    address: std::net::SocketAddr,
}

impl ServerProcess {
    /// Starts `program` with `args` (which should bind port 0) and waits, up to 60 seconds,
    /// for the line `... listening on http://ADDRESS ...` on its standard output.
    ///
    /// # Panics
    ///
    /// When the process cannot start or exits before listening; its standard error is
    /// shown then.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn start(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env_remove("OAUTHOST_DATABASE_URL")
            .env_remove("OAUTHOST_DEBUG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = sender.send(address);
                }
            }
        });
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => Self {
                child,
                address: address.parse().expect("a socket address"),
            },
            Err(_) => {
                let _ = child.kill();
                let output = child
                    .wait_with_output()
                    .expect("collect the server's output");
                panic!(
                    "the server did not start listening: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }

    /// `http://ADDRESS`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and returns what it wrote on standard error.
    pub fn stop(mut self) -> String {
        use std::io::Read;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        stderr
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
