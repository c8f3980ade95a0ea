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
//!
//! [`TestServer`] serves oauthost in the test's process; [`browser::Browser`] drives a
//! headless Chromium against it, for tests of the pages as a user sees them.

use std::{path::PathBuf, time::Duration};

use oauthost_core::secret::random_bytes;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

pub mod browser;

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
    /// for the line `... listening on http(s)://ADDRESS ...` on its standard output.
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
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let address = url.split("://").nth(1).unwrap_or_default().to_owned();
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

/// An oauthost router served in this process on a loopback port, over real HTTP, with a
/// clock the test moves.
pub struct TestServer {
    /// The server's logic and store.
    pub server: oauthost::server::Oauthost,
    /// The clock the server reads; starts at the real time.
    pub clock: oauthost_core::clock::ManualClock,
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Migrates `db` and serves oauthost on it with `settings` and the built-in templates.
    pub async fn start(db: &TestDatabase, settings: oauthost::server::Settings) -> Self {
        Self::start_with(db, settings, oauthost::web::Templates::default()).await
    }

    /// [`TestServer::start`] with page templates of the test's choosing.
    pub async fn start_with(
        db: &TestDatabase,
        settings: oauthost::server::Settings,
        templates: oauthost::web::Templates,
    ) -> Self {
        Self::start_full(db, settings, templates, |_| async { axum::Router::new() }).await
    }

    /// [`TestServer::start`] with an application's routes beside oauthost's, built from
    /// the server by `routes`.
    pub async fn start_app<F, Fut>(
        db: &TestDatabase,
        settings: oauthost::server::Settings,
        routes: F,
    ) -> Self
    where
        F: FnOnce(oauthost::server::Oauthost) -> Fut,
        Fut: std::future::Future<Output = axum::Router>,
    {
        Self::start_full(db, settings, oauthost::web::Templates::default(), routes).await
    }

    #[allow(clippy::expect_used)]
    async fn start_full<F, Fut>(
        db: &TestDatabase,
        settings: oauthost::server::Settings,
        templates: oauthost::web::Templates,
        routes: F,
    ) -> Self
    where
        F: FnOnce(oauthost::server::Oauthost) -> Fut,
        Fut: std::future::Future<Output = axum::Router>,
    {
        use oauthost_core::clock::Clock as _;
        let store = oauthost::store::connect(db.url())
            .await
            .expect("open the test database");
        store.migrate().await.expect("migrate the test database");
        let clock = oauthost_core::clock::ManualClock::at_unix(
            oauthost_core::clock::SystemClock.now().unix_timestamp(),
        );
        let server = oauthost::server::Oauthost::builder(store)
            .settings(settings)
            .clock(clock.clone())
            .templates(templates)
            .build();
        let app = server
            .router()
            .merge(server.admin_router())
            .merge(routes(server.clone()).await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("a local address");
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Self {
            server,
            clock,
            base_url: format!("http://{address}"),
            task,
        }
    }

    /// The store.
    pub fn store(&self) -> &oauthost::store::DynStore {
        self.server.store()
    }

    /// `http://ADDRESS` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A client that keeps cookies and does not follow redirects, like a browser whose
    /// every step the test checks.
    #[allow(clippy::expect_used)]
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("build an HTTP client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of the hidden CSRF field in an HTML form.
pub fn csrf_token(html: &str) -> Option<String> {
    hidden_field(html, "csrfmiddlewaretoken")
}

/// The value of the hidden input called `name` in an HTML page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Steps of the OAuth flows, as a browser and a client perform them, for end-to-end tests.
#[allow(clippy::expect_used, clippy::unwrap_used)]
pub mod flows {
    use oauthost::{
        store::DynStore,
        toolbox::{self, ClientRegistration, RegisteredClient},
    };
    use reqwest::{Client, StatusCode};

    use super::{csrf_token, hidden_field, TestServer};

    /// Creates a user.
    pub async fn user(store: &DynStore, username: &str, password: &str) {
        toolbox::create_user(&**store, username, password, false)
            .await
            .expect("create a user");
    }

    /// Registers a client.
    pub async fn client(store: &DynStore, registration: ClientRegistration) -> RegisteredClient {
        toolbox::register_client(&**store, registration)
            .await
            .expect("register a client")
    }

    /// Opens the login page in `browser` and returns its form's CSRF token.
    pub async fn login_csrf_token(browser: &Client, server: &TestServer) -> String {
        let page = browser
            .get(server.url("/login/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_token(&page).expect("the login form has a CSRF token")
    }

    /// Logs `browser` in through the login form and checks the redirect to `next`.
    pub async fn log_in(browser: &Client, server: &TestServer, username: &str, password: &str) {
        let token = login_csrf_token(browser, server).await;
        let response = browser
            .post(server.url("/login/"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrfmiddlewaretoken", &token),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "login of {username} failed"
        );
    }

    /// Opens `/auth/?{query}` and returns the consent page's HTML (the browser must be
    /// logged in and the request valid).
    pub async fn consent_page(browser: &Client, server: &TestServer, query: &str) -> String {
        let response = browser
            .get(server.url(&format!("/auth/?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "/auth/?{query} did not show the consent page"
        );
        response.text().await.unwrap()
    }

    /// Posts the consent form of `page` with the user's decision and returns the response.
    pub async fn decide(
        browser: &Client,
        server: &TestServer,
        page: &str,
        approve: bool,
    ) -> reqwest::Response {
        let mut form = vec![
            (
                "csrfmiddlewaretoken",
                csrf_token(page).expect("a CSRF token"),
            ),
            (
                "request_id",
                hidden_field(page, "request_id").expect("a request id"),
            ),
            ("auth_decision", "is_made".to_owned()),
        ];
        if approve {
            form.push(("confirmed", "yes".to_owned()));
        }
        browser
            .post(server.url("/auth/"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// The `Location` of a redirect.
    pub fn location(response: &reqwest::Response) -> String {
        assert_eq!(response.status(), StatusCode::FOUND, "expected a redirect");
        response
            .headers()
            .get("location")
            .expect("a Location header")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Parameter `name` of the query of `url`.
    pub fn query_param(url: &str, name: &str) -> Option<String> {
        let url = url::Url::parse(url).ok()?;
        url.query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Parameter `name` of the fragment of `url`.
    pub fn fragment_param(url: &str, name: &str) -> Option<String> {
        let fragment = url::Url::parse(url).ok()?.fragment()?.to_owned();
        url::form_urlencoded::parse(fragment.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Logs in, asks for a code with `query`, approves, and returns the code.
    pub async fn code(browser: &Client, server: &TestServer, query: &str) -> String {
        let page = consent_page(browser, server, query).await;
        let response = decide(browser, server, &page, true).await;
        query_param(&location(&response), "code").expect("a code in the redirect")
    }

    /// Posts `form` to `/token/` and returns the status and JSON body.
    pub async fn token(
        server: &TestServer,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, serde_json::Value) {
        post_json(server, "/token/", basic, form).await
    }

    /// Posts `form` to `path` and returns the status and JSON body (`null` when empty).
    pub async fn post_json(
        server: &TestServer,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, serde_json::Value) {
        let mut request = reqwest::Client::new().post(server.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        let json = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"))
        };
        (status, json)
    }
}
