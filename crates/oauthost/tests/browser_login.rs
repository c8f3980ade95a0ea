//! The login and logout pages in a real browser (headless Chromium over WebDriver).
//!
//! Skipped, with a note, when chromedriver is not installed, unless
//! `OAUTHOST_TEST_BROWSER=required` (as in CI): see `oauthost_testkit::browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauthost::server::Settings;
use oauthost_testkit::{browser::Browser, flows, TestDatabase, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_and_out_through_the_forms() {
    let db = TestDatabase::sqlite();
    let settings = Settings {
        debug: true,
        ..Settings::default()
    };
    let server = TestServer::start(&db, settings).await;
    flows::user(server.store(), "alice", "correct horse").await;
    let Some(browser) = Browser::start(&server.url("")).await else {
        return;
    };
    browser
        .run("logging_in_and_out_through_the_forms", async |browser| {
            // A wrong password: the form comes back with the error and the username kept.
            browser.goto("/login/?next=/logout/").await?;
            assert!(!browser.exists(".error").await?);
            browser.fill("#username", "alice").await?;
            browser.fill("#password", "wrong").await?;
            browser.submit("form").await?;
            assert_eq!(browser.current_path().await?, "/login/");
            assert_eq!(
                browser.text_of(".error").await?,
                "Please enter a correct username and password."
            );
            assert_eq!(browser.value_of("#username").await?, "alice");
            assert_eq!(browser.value_of("#password").await?, "");

            // The right one: on to `next`, the logout page, which names the user.
            browser.fill("#password", "correct horse").await?;
            browser.submit("form").await?;
            assert_eq!(browser.current_path().await?, "/logout/");
            assert_eq!(
                browser.text_of("main p").await?,
                "You are logged in as alice."
            );

            // Logging out leads back to the login page, logged out.
            browser.submit("form").await?;
            assert_eq!(browser.current_path().await?, "/login/");
            assert!(!browser.exists(".muted").await?);
            browser.goto("/logout/").await?;
            assert_eq!(browser.text_of("main p").await?, "You are not logged in.");

            // The testkit's own login helper, used by the admin tests.
            browser.log_in("alice", "correct horse", "/logout/").await?;
            assert_eq!(browser.current_path().await?, "/logout/");
            let wrong = browser.log_in("alice", "nope", "/logout/").await;
            assert!(wrong.is_err());
            Ok(())
        })
        .await;
}
