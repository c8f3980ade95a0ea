//! The admin site in a real browser (headless Chromium over WebDriver): what an operator
//! does, click by click. A failing test saves a screenshot under
//! `target/browser-screenshots/`.
//!
//! Skipped, with a note, when chromedriver is not installed, unless
//! `OAUTHOST_TEST_BROWSER=required` (as in CI): see `oauthost_testkit::browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauthost::{server::Settings, toolbox};
use oauthost_testkit::{browser::Browser, flows, TestDatabase, TestServer};

const PASSWORD: &str = "correct horse";

async fn start(db: &TestDatabase) -> TestServer {
    let settings = Settings {
        debug: true,
        ..Settings::default()
    };
    let server = TestServer::start(db, settings).await;
    toolbox::create_user(&**server.store(), "admin", PASSWORD, true)
        .await
        .unwrap();
    flows::user(server.store(), "bob", PASSWORD).await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_a_client_and_revokes_its_token() {
    let db = TestDatabase::sqlite();
    let server = start(&db).await;
    let Some(browser) = Browser::start(&server.url("")).await else {
        return;
    };
    browser
        .run(
            "an_operator_registers_a_client_and_revokes_its_token",
            async |b| {
                b.log_in("admin", PASSWORD, "/admin/").await?;
                assert_eq!(b.current_path().await?, "/admin/");
                assert_eq!(b.text_of("h1").await?, "Administration");

                // Add a scope.
                b.click_and_wait("a[href='/admin/scopes/']").await?;
                b.click_and_wait("a[href='/admin/scopes/add/']").await?;
                b.fill("#identifier", "polls:index").await?;
                b.fill("#title", "Polls index").await?;
                b.submit("form.fields").await?;
                assert_eq!(b.current_path().await?, "/admin/scopes/");
                assert_eq!(
                    b.text_of(".flash.success").await?,
                    "Scope \"Polls index\" added."
                );
                assert!(b
                    .texts_of("td code")
                    .await?
                    .contains(&"polls:index".to_owned()));

                // Register a client with two redirect URIs and a scope restriction.
                b.click_and_wait("header a[href='/admin/clients/']").await?;
                b.click_and_wait("a[href='/admin/clients/add/']").await?;
                b.fill("#title", "Polls client").await?;
                b.fill("#identifier", "polls-client").await?;
                b.fill(
                    "#redirect_uris",
                    "https://client.example/one\nhttps://client.example/two",
                )
                .await?;
                b.select_labels("#scopes", &["Polls index (polls:index)"])
                    .await?;
                b.check("input[name=grant_types][value=refresh_token]")
                    .await?;
                b.submit("form.fields").await?;
                // A confidential client's secret, shown once.
                assert_eq!(b.text_of("h1").await?, "Client secret");
                assert!(b.text_of("#shown-once").await?.len() >= 43);
                b.click_and_wait("a.button").await?;
                assert_eq!(b.text_of("h1").await?, "Polls client");
                assert_eq!(
                    b.texts_of("#redirects ~ .card td code").await?,
                    ["https://client.example/one", "https://client.example/two"]
                );
                assert_eq!(b.value_of("#title").await?, "Polls client");

                // Seen in the list, and found by search.
                b.goto("/admin/clients/").await?;
                assert!(b
                    .texts_of("td a")
                    .await?
                    .contains(&"Polls client".to_owned()));
                b.fill("input[name=q]", "polls").await?;
                b.submit("form[role=search]").await?;
                assert_eq!(
                    b.texts_of("tbody td:first-child a").await?,
                    ["Polls client"]
                );
                b.fill("input[name=q]", "nothing like it").await?;
                b.submit("form[role=search]").await?;
                assert_eq!(b.text_of("tbody td").await?, "No clients match.");

                // Issue a token for bob, shown once, then listed with its fingerprint.
                b.goto("/admin/clients/").await?;
                b.click_and_wait("tbody a").await?;
                b.fill("#token-username", "bob").await?;
                b.check("input[name=scope][value='polls:index']").await?;
                b.submit("form[action$='/token/']").await?;
                assert_eq!(b.text_of("h1").await?, "New access token");
                let token = b.text_of("#shown-once").await?;
                let issued = server.server.check_access_token(&token).await?.unwrap();
                assert_eq!(issued.username.as_deref(), Some("bob"));

                b.goto("/admin/tokens/").await?;
                assert_eq!(b.texts_of("tbody td .badge").await?, ["active"]);
                let fingerprint = b.text_of("tbody td .mono").await?;
                assert!(
                    token.len() > fingerprint.len() && !b.page_source().await?.contains(&token)
                );

                // Revoke it: the status changes, and the token stops working at once.
                b.check("input[name=ids]").await?;
                b.click_and_wait("#revoke-tokens button").await?;
                assert_eq!(b.text_of(".flash.success").await?, "1 token(s) revoked.");
                assert_eq!(b.texts_of("tbody td .badge").await?, ["revoked"]);
                assert!(server.server.check_access_token(&token).await?.is_none());
                b.click_and_wait("aside a[href*='status=active']").await?;
                assert_eq!(b.text_of("tbody td").await?, "No tokens.");
                Ok(())
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_is_not_staff_is_refused() {
    let db = TestDatabase::sqlite();
    let server = start(&db).await;
    let Some(browser) = Browser::start(&server.url("")).await else {
        return;
    };
    browser
        .run("a_user_who_is_not_staff_is_refused", async |b| {
            // Logged out: sent to the login page, which brings staff back.
            b.goto("/admin/clients/").await?;
            assert_eq!(b.current_path().await?, "/login/");

            // Logged in without staff status: still the login page, nothing shown.
            b.fill("#username", "bob").await?;
            b.fill("#password", PASSWORD).await?;
            b.submit("form").await?;
            assert_eq!(b.current_path().await?, "/login/");
            assert_eq!(
                b.text_of("main p.muted").await?,
                "You are logged in as bob."
            );
            assert!(!b.exists("table").await?);
            b.goto("/admin/users/").await?;
            assert_eq!(b.current_path().await?, "/login/");

            // Staff logging in on that same page goes on to where bob was refused.
            b.fill("#username", "admin").await?;
            b.fill("#password", PASSWORD).await?;
            b.submit("form").await?;
            assert_eq!(b.current_path().await?, "/admin/users/");
            assert!(b.texts_of("tbody td a").await?.contains(&"bob".to_owned()));
            Ok(())
        })
        .await;
}
