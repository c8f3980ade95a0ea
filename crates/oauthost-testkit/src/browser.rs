//! A real browser for end-to-end tests: headless Chromium driven over WebDriver.
//!
//! [`Browser::start`] spawns `chromedriver` on a free loopback port and opens a headless
//! Chromium session whose relative URLs resolve against a test server. Whether the browser
//! tests run depends on `OAUTHOST_TEST_BROWSER` and on finding `chromedriver`:
//!
//! | `OAUTHOST_TEST_BROWSER` | chromedriver found | chromedriver missing |
//! |---|---|---|
//! | unset | run | skip, with a note on standard error |
//! | `required` or `1` (CI) | run | fail |
//! | `skip` or `0` | skip, with a note | skip, with a note |
//!
//! A driver that is found but cannot start a browser is always a failure, never a skip.
//! On Debian, `apt-get install chromium chromium-driver` provides both programs.
//!
//! A test runs its body through [`Browser::run`], which saves a screenshot and the page's
//! HTML under `target/browser-screenshots/` when the body fails or panics:
//!
//! ```no_run
//! # async fn example(server: &oauthost_testkit::TestServer) {
//! use oauthost_testkit::browser::Browser;
//!
//! let Some(browser) = Browser::start(&server.url("")).await else {
//!     return; // no browser on this machine: skipped, with a note
//! };
//! browser
//!     .run("login_page", async |browser| {
//!         browser.goto("/login/").await?;
//!         browser.fill("#username", "alice").await?;
//!         browser.fill("#password", "pw").await?;
//!         browser.submit("form").await?;
//!         assert_eq!(browser.current_path().await?, "/login/");
//!         Ok(())
//!     })
//!     .await;
//! # }
//! ```
//!
//! The pages work without JavaScript and so do these helpers: they click and type as a user
//! does. Each helper that leaves the page ([`Browser::submit`], [`Browser::click_and_wait`],
//! [`Browser::goto`]) returns only once the next page has loaded.

use std::{
    error::Error as StdError,
    future::Future,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::mpsc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use fantoccini::{
    elements::Element, error::CmdError, wd::TimeoutConfiguration, Client, ClientBuilder, Locator,
};
use url::Url;

/// The environment variable that makes the browser tests required (`required` or `1`) or
/// skipped (`skip` or `0`); unset, they run when `chromedriver` is found.
pub const BROWSER_VAR: &str = "OAUTHOST_TEST_BROWSER";
/// The environment variable naming the `chromedriver` program to use.
pub const CHROMEDRIVER_VAR: &str = "OAUTHOST_TEST_CHROMEDRIVER";
/// The environment variable naming the Chromium binary (default `/usr/bin/chromium`).
pub const CHROMIUM_VAR: &str = "OAUTHOST_TEST_CHROMIUM";

/// How long the helpers wait for an element, a page or the driver before failing.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the helpers look again while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The arguments Chromium gets: headless, no sandbox (tests often run as root in
/// containers), a fixed window size so that screenshots are comparable.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--window-size=1280,900",
];

/// What a browser test body returns: `?` takes any error, including [`BrowserError`].
pub type TestResult<T = ()> = Result<T, Box<dyn StdError>>;

/// A browser step that failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The WebDriver command for `action` failed (no such element, a timeout, a lost
    /// connection...).
    #[error("{action}")]
    Command {
        /// What the helper was doing, with the CSS selector or path it was given.
        action: String,
        /// The WebDriver error.
        #[source]
        source: CmdError,
    },
    /// The page was not as the helper needed it (the message says how).
    #[error("{0}")]
    Page(String),
}

fn command(action: impl Into<String>) -> impl FnOnce(CmdError) -> BrowserError {
    let action = action.into();
    move |source| BrowserError::Command { action, source }
}

/// A headless Chromium session, with the `chromedriver` process that drives it.
///
/// Dropping a `Browser` shuts its driver and browser down; [`Browser::run`] and
/// [`Browser::close`] also end the WebDriver session cleanly first.
pub struct Browser {
    client: Client,
    base_url: Url,
    // Declared last: dropped after the session's client.
    driver: Driver,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("base_url", &self.base_url.as_str())
            .field("driver_port", &self.driver.port)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium whose relative URLs resolve against
    /// `base_url` (such as `server.url("")` of a [`crate::TestServer`]), or returns `None`,
    /// with a note on standard error, when the browser tests are to be skipped (see the
    /// [module documentation](self)).
    ///
    /// `chromedriver` is `OAUTHOST_TEST_CHROMEDRIVER` if set, else `/usr/bin/chromedriver`,
    /// else the first `chromedriver` on `PATH`; Chromium is `OAUTHOST_TEST_CHROMIUM` if set,
    /// else `/usr/bin/chromium` if it exists, else whatever `chromedriver` finds.
    ///
    /// # Panics
    ///
    /// When `OAUTHOST_TEST_BROWSER=required` and no `chromedriver` is found, when the one
    /// found (or named) cannot start a browser session, or when `base_url` is not a URL.
    #[allow(clippy::panic)]
    pub async fn start(base_url: &str) -> Option<Self> {
        let base_url = Url::parse(base_url)
            .unwrap_or_else(|e| panic!("Browser::start: bad base URL {base_url:?}: {e}"));
        let required = match std::env::var(BROWSER_VAR).unwrap_or_default().as_str() {
            "" => false,
            "required" | "1" => true,
            "skip" | "0" => {
                eprintln!("note: {BROWSER_VAR} says skip; skipping this browser test");
                return None;
            }
            other => panic!("{BROWSER_VAR}={other:?}: expected `required`, `1`, `skip` or `0`"),
        };
        let Some(chromedriver) = find_chromedriver() else {
            if required {
                panic!(
                    "{BROWSER_VAR}={} but chromedriver was not found (set {CHROMEDRIVER_VAR}, \
                     or install it: apt-get install chromium chromium-driver)",
                    std::env::var(BROWSER_VAR).unwrap_or_default()
                );
            }
            eprintln!(
                "note: chromedriver not found (apt-get install chromium chromium-driver, or set \
                 {CHROMEDRIVER_VAR}); skipping this browser test"
            );
            return None;
        };
        match Self::launch(&chromedriver, base_url).await {
            Ok(browser) => Some(browser),
            Err(error) => panic!(
                "could not start a headless browser with {}: {error}",
                chromedriver.display()
            ),
        }
    }

    async fn launch(chromedriver: &Path, base_url: Url) -> Result<Self, String> {
        let driver = Driver::spawn(chromedriver)?;
        driver.wait_until_ready().await?;
        let mut options = serde_json::Map::new();
        options.insert("args".into(), serde_json::json!(CHROMIUM_ARGS));
        if let Some(binary) = chromium_binary() {
            options.insert("binary".into(), binary.display().to_string().into());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), options.into());
        let connecting =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url())
                .await;
        let client = connecting.map_err(|e| format!("the WebDriver session failed: {e}"))?;
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(WAIT_TIMEOUT),
                Some(WAIT_TIMEOUT * 2),
                Some(Duration::ZERO),
            ))
            .await
            .map_err(|e| format!("setting the WebDriver timeouts failed: {e}"))?;
        Ok(Self {
            client,
            base_url,
            driver,
        })
    }

    /// Runs a test body against this browser, then closes it. When the body returns an
    /// error or panics, first saves `target/browser-screenshots/<name>.png` (and the page's
    /// HTML beside it, `<name>.html`), prints their paths and the page's URL, then fails the
    /// test with the error (or lets the panic go on).
    ///
    /// # Panics
    ///
    /// When the body fails: that is the test failing.
    #[allow(clippy::panic)]
    pub async fn run<T>(self, name: &str, body: impl AsyncFnOnce(&Browser) -> TestResult<T>) -> T {
        let outcome = CatchUnwind(Box::pin(body(&self))).await;
        let failed = !matches!(outcome, Ok(Ok(_)));
        if failed {
            self.save_failure(name).await;
        }
        self.close().await;
        match outcome {
            Ok(Ok(value)) => value,
            Ok(Err(error)) => panic!("browser test `{name}` failed: {}", error_chain(&*error)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Ends the WebDriver session and shuts the browser and its driver down.
    pub async fn close(self) {
        let Self { client, driver, .. } = self;
        if let Err(e) = client.close().await {
            eprintln!("note: closing the browser session failed: {e}");
        }
        drop(driver);
    }

    /// Saves a screenshot of the page to `target/browser-screenshots/<name>.png` and
    /// returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, Box<dyn StdError>> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(command("take a screenshot"))?;
        let path = artifact_path(name, "png")?;
        std::fs::write(&path, png)?;
        Ok(path)
    }

    async fn save_failure(&self, name: &str) {
        match self.screenshot(name).await {
            Ok(path) => eprintln!(
                "browser test `{name}` failed; screenshot: {}",
                path.display()
            ),
            Err(e) => eprintln!("browser test `{name}` failed; no screenshot: {e}"),
        }
        if let Ok(source) = self.client.source().await {
            if let Ok(path) = artifact_path(name, "html") {
                if std::fs::write(&path, source).is_ok() {
                    eprintln!("  page HTML: {}", path.display());
                }
            }
        }
        if let Ok(url) = self.client.current_url().await {
            eprintln!("  page URL: {url}");
        }
    }

    /// The underlying WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The URL relative paths resolve against.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `path` (such as `/login/?next=/admin/`) resolved against the base URL.
    pub fn url(&self, path: &str) -> Result<Url, BrowserError> {
        self.base_url
            .join(path)
            .map_err(|e| BrowserError::Page(format!("bad path {path:?}: {e}")))
    }

    /// Opens `path` (relative to the base URL, or absolute) and waits for it to load.
    pub async fn goto(&self, path: &str) -> Result<(), BrowserError> {
        let url = self.url(path)?;
        self.client
            .goto(url.as_str())
            .await
            .map_err(command(format!("open {url}")))
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> Result<Url, BrowserError> {
        self.client
            .current_url()
            .await
            .map_err(command("read the current URL"))
    }

    /// The current page's path, without its query: `/admin/clients/`.
    pub async fn current_path(&self) -> Result<String, BrowserError> {
        Ok(self.current_url().await?.path().to_owned())
    }

    /// The current page's HTML, as the browser serialises its DOM (not the bytes the
    /// server sent: attributes may be quoted and escaped differently).
    pub async fn page_source(&self) -> Result<String, BrowserError> {
        self.client
            .source()
            .await
            .map_err(command("read the page source"))
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> Result<String, BrowserError> {
        self.client.title().await.map_err(command("read the title"))
    }

    /// The first element matching `css`, failing at once if there is none.
    pub async fn find(&self, css: &str) -> Result<Element, BrowserError> {
        self.client
            .find(Locator::Css(css))
            .await
            .map_err(command(format!("find `{css}`")))
    }

    /// Every element matching `css` (possibly none).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, BrowserError> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_err(command(format!("find all `{css}`")))
    }

    /// Whether some element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> Result<bool, BrowserError> {
        Ok(!self.find_all(css).await?.is_empty())
    }

    /// Waits, up to [`WAIT_TIMEOUT`], for an element matching `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<Element, BrowserError> {
        self.client
            .wait()
            .at_most(WAIT_TIMEOUT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .map_err(command(format!("wait for `{css}`")))
    }

    /// The rendered text of the first element matching `css`, trimmed (hidden elements
    /// have none).
    pub async fn text_of(&self, css: &str) -> Result<String, BrowserError> {
        let text = self
            .find(css)
            .await?
            .text()
            .await
            .map_err(command(format!("read the text of `{css}`")))?;
        Ok(text.trim().to_owned())
    }

    /// The rendered text of every element matching `css`, trimmed: the cells of a table
    /// column, the items of a list.
    pub async fn texts_of(&self, css: &str) -> Result<Vec<String>, BrowserError> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await? {
            let text = element
                .text()
                .await
                .map_err(command(format!("read the text of `{css}`")))?;
            texts.push(text.trim().to_owned());
        }
        Ok(texts)
    }

    /// The HTML attribute `name` of the first element matching `css`, as written in the
    /// page (for the live value of a field, see [`Browser::value_of`]).
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>, BrowserError> {
        self.find(css)
            .await?
            .attr(name)
            .await
            .map_err(command(format!("read attribute {name} of `{css}`")))
    }

    /// The current value of the form field matching `css`.
    pub async fn value_of(&self, css: &str) -> Result<String, BrowserError> {
        let value = self
            .find(css)
            .await?
            .prop("value")
            .await
            .map_err(command(format!("read the value of `{css}`")))?;
        Ok(value.unwrap_or_default())
    }

    /// Replaces the content of the text field (or text area) matching `css` with `value`,
    /// typed as a user would.
    pub async fn fill(&self, css: &str, value: &str) -> Result<(), BrowserError> {
        let field = self.find(css).await?;
        field
            .clear()
            .await
            .map_err(command(format!("clear `{css}`")))?;
        field
            .send_keys(value)
            .await
            .map_err(command(format!("type into `{css}`")))
    }

    /// Clicks the element matching `css`, staying on the page (a checkbox, a `<details>`).
    /// To follow a link or press a submit button, use [`Browser::click_and_wait`].
    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        self.find(css)
            .await?
            .click()
            .await
            .map_err(command(format!("click `{css}`")))
    }

    /// Clicks the link or button matching `css` and waits until the next page has loaded
    /// (the current one is gone and the new one is complete).
    pub async fn click_and_wait(&self, css: &str) -> Result<(), BrowserError> {
        let element = self.find(css).await?;
        self.leave_page(
            format!("click `{css}`"),
            async move { element.click().await },
        )
        .await
    }

    /// Submits the form matching `form_css` with its submit button, as pressing it does,
    /// and waits for the next page. With several submit buttons, press the one wanted with
    /// [`Browser::click_and_wait`].
    ///
    /// A form whose `required` fields are empty is not sent: that fails here after
    /// [`WAIT_TIMEOUT`].
    pub async fn submit(&self, form_css: &str) -> Result<(), BrowserError> {
        let form = self.find(form_css).await?;
        let button = form
            .find(Locator::Css(
                "button[type=submit], button:not([type]), input[type=submit]",
            ))
            .await
            .map_err(command(format!("find the submit button of `{form_css}`")))?;
        self.leave_page(format!("submit `{form_css}`"), async move {
            button.click().await
        })
        .await
    }

    /// Makes sure the checkbox (or radio button) matching `css` is checked.
    pub async fn check(&self, css: &str) -> Result<(), BrowserError> {
        self.set_checked(css, true).await
    }

    /// Makes sure the checkbox matching `css` is not checked.
    pub async fn uncheck(&self, css: &str) -> Result<(), BrowserError> {
        self.set_checked(css, false).await
    }

    async fn set_checked(&self, css: &str, checked: bool) -> Result<(), BrowserError> {
        let element = self.find(css).await?;
        let selected = element
            .is_selected()
            .await
            .map_err(command(format!("read whether `{css}` is checked")))?;
        if selected != checked {
            element
                .click()
                .await
                .map_err(command(format!("click `{css}`")))?;
        }
        Ok(())
    }

    /// Selects, in the `<select>` matching `css`, exactly the options whose `value`
    /// attributes are `values`: in a `<select multiple>` every other option is unselected;
    /// a plain `<select>` takes exactly one value.
    pub async fn select(&self, css: &str, values: &[&str]) -> Result<(), BrowserError> {
        self.select_options(css, values, OptionKey::Value).await
    }

    /// [`Browser::select`] by the options' visible labels instead of their values.
    pub async fn select_labels(&self, css: &str, labels: &[&str]) -> Result<(), BrowserError> {
        self.select_options(css, labels, OptionKey::Label).await
    }

    async fn select_options(
        &self,
        css: &str,
        wanted: &[&str],
        key: OptionKey,
    ) -> Result<(), BrowserError> {
        let select = self.find(css).await?;
        let multiple = select
            .attr("multiple")
            .await
            .map_err(command(format!("read `{css}`")))?
            .is_some();
        if !multiple && wanted.len() != 1 {
            return Err(BrowserError::Page(format!(
                "`{css}` is not a <select multiple>: select exactly one option, not {wanted:?}"
            )));
        }
        let options = select
            .find_all(Locator::Css("option"))
            .await
            .map_err(command(format!("list the options of `{css}`")))?;
        let mut found = Vec::new();
        for option in options {
            let name = match key {
                OptionKey::Value => option.prop("value").await,
                OptionKey::Label => option.text().await.map(Some),
            }
            .map_err(command(format!("read an option of `{css}`")))?
            .unwrap_or_default();
            let name = name.trim().to_owned();
            let want = wanted.contains(&name.as_str());
            let selected = option
                .is_selected()
                .await
                .map_err(command(format!("read option {name:?} of `{css}`")))?;
            // In a multiple select a click toggles the option; in a plain one it selects it.
            if want != selected && (multiple || want) {
                option
                    .click()
                    .await
                    .map_err(command(format!("click option {name:?} of `{css}`")))?;
            }
            if want {
                found.push(name);
            }
        }
        match wanted.iter().find(|w| !found.iter().any(|f| f == *w)) {
            Some(missing) => Err(BrowserError::Page(format!(
                "`{css}` has no option {missing:?} (options found: {found:?})"
            ))),
            None => Ok(()),
        }
    }

    /// Accepts the JavaScript `alert()` or `confirm()` dialog that is open, waiting up to
    /// [`WAIT_TIMEOUT`] for one to appear. (oauthost's pages confirm on the server, without
    /// JavaScript; this is for pages that do not.)
    pub async fn accept_dialog(&self) -> Result<(), BrowserError> {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            match self.client.accept_alert().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_no_such_alert() && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(command("accept a dialog")(e)),
            }
        }
    }

    /// Logs in through `/login/?next=NEXT` with the login form and waits for the page it
    /// leads to; fails with the form's error message when the login page comes back.
    pub async fn log_in(
        &self,
        username: &str,
        password: &str,
        next: &str,
    ) -> Result<(), BrowserError> {
        let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        self.goto(&format!("/login/?next={next}")).await?;
        self.fill("#username", username).await?;
        self.fill("#password", password).await?;
        self.submit("form").await?;
        if self.current_path().await? == self.url("/login/")?.path() {
            let error = self.texts_of(".error").await?.join(" ");
            return Err(BrowserError::Page(format!(
                "login of {username} failed: {error:?}"
            )));
        }
        Ok(())
    }

    /// Runs `action`, which makes the browser leave the current page, then waits until
    /// that page is gone and the next one has loaded.
    async fn leave_page(
        &self,
        what: String,
        action: impl Future<Output = Result<(), CmdError>>,
    ) -> Result<(), BrowserError> {
        let old = self
            .find("html")
            .await
            .map_err(|e| BrowserError::Page(format!("{what}: no page to leave: {e}")))?;
        action.await.map_err(command(what.clone()))?;
        let deadline = Instant::now() + WAIT_TIMEOUT;
        // The old document's root goes stale once the next page replaces it. While the
        // switch happens, Chromium may instead say that the node "does not belong to the
        // document": that too means the old page is gone.
        loop {
            match old.tag_name().await {
                Err(e) if e.is_stale_element_reference() || left_document(&e) => break,
                Err(e) => return Err(command(format!("{what}: wait for the next page"))(e)),
                Ok(_) if Instant::now() >= deadline => {
                    return Err(BrowserError::Page(format!(
                        "{what}: still on the same page after {WAIT_TIMEOUT:?} (an empty \
                         required field? a button that does not submit?)"
                    )));
                }
                Ok(_) => tokio::time::sleep(POLL).await,
            }
        }
        loop {
            let state = self
                .client
                .execute("return document.readyState", Vec::new())
                .await
                .map_err(command(format!("{what}: wait for the next page")))?;
            if state == "complete" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Page(format!(
                    "{what}: the next page did not finish loading in {WAIT_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[derive(Clone, Copy)]
enum OptionKey {
    Value,
    Label,
}

/// The `chromedriver` to use, if any (see [`Browser::start`]).
#[allow(clippy::panic)]
fn find_chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMEDRIVER_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            panic!("{CHROMEDRIVER_VAR}={} does not exist", path.display());
        }
        return Some(path);
    }
    let default = PathBuf::from("/usr/bin/chromedriver");
    if default.is_file() {
        return Some(default);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// The Chromium binary to ask for, if any (else chromedriver looks for one itself).
fn chromium_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMIUM_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file())
}

/// A `chromedriver` process on a loopback port, shut down (with its browsers) when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `program` on a port of the system's choosing and reads which one from its
    /// output.
    fn spawn(program: &Path) -> Result<Self, String> {
        let mut child = Command::new(program)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("chromedriver did not start: {e}"))?;
        // Both pipes are read to their end by threads of their own, so that the driver
        // never blocks on a full pipe; lines before the port's go into the error message.
        let (sender, receiver) = mpsc::channel();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        drop(sender);
        let mut output = Vec::new();
        let deadline = Instant::now() + WAIT_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = line
                        .split("started successfully on port ")
                        .nth(1)
                        .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                    {
                        break port;
                    }
                    output.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!(
                        "chromedriver did not report its port ({status}); its output:\n{}",
                        output.join("\n")
                    ));
                }
            }
        };
        Ok(Self { child, port })
    }

    /// `http://127.0.0.1:PORT`, the WebDriver endpoint.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `GET /status` says the driver is ready for a session.
    async fn wait_until_ready(&self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("an HTTP client: {e}"))?;
        let deadline = Instant::now() + WAIT_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match http.get(format!("{}/status", self.url())).send().await {
                Ok(response) => match response.json::<serde_json::Value>().await {
                    Ok(status) if status["value"]["ready"] == true => return Ok(()),
                    Ok(status) => last = status.to_string(),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!(
            "chromedriver on port {} was not ready after {WAIT_TIMEOUT:?}: {last}",
            self.port
        ))
    }

    /// Asks the driver to quit; it closes its browsers first (killing it outright would
    /// leave Chromium running). Plain blocking HTTP: this runs in `Drop`.
    fn request_shutdown(&self) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.request_shutdown();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(POLL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A future that turns a panic while polling into an `Err`, so that [`Browser::run`] can
/// take its screenshot before the test fails.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// `error: cause: cause...`.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `target/browser-screenshots/<name>.<extension>`, creating the folder.
fn artifact_path(name: &str, extension: &str) -> std::io::Result<PathBuf> {
    let dir = target_dir().join("browser-screenshots");
    std::fs::create_dir_all(&dir)?;
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(dir.join(format!("{file}.{extension}")))
}

/// The workspace's target folder: `CARGO_TARGET_DIR` (relative to the workspace), else
/// `target` in the folder that holds `Cargo.lock` above the package being tested.
fn target_dir() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map_or_else(|| start.clone(), Path::to_path_buf);
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Whether `error` is Chromium's report of an element whose document was replaced.
fn left_document(error: &CmdError) -> bool {
    error
        .to_string()
        .contains("does not belong to the document")
}
