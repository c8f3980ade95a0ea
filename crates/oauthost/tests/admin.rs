//! The admin site over HTTP, on both databases: who gets in, CSRF, every validation rule of
//! its forms (errors next to the fields, values kept, nothing half-saved), and the actions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauthost::{
    server::Settings,
    store::{
        admin::{ClientChanges, ClientFilter, ClientSort, PageRequest, SortKey},
        NewToken, StoreError,
    },
    toolbox::{self, ClientRegistration},
};
use oauthost_core::{
    client::{ClientType, GrantType, GrantTypes},
    secret::Secret,
};
use oauthost_testkit::{backend_tests, csrf_token, flows, TestDatabase, TestServer};
use reqwest::{Client, StatusCode};

const PASSWORD: &str = "correct horse";

async fn start(db: &TestDatabase, debug: bool) -> TestServer {
    TestServer::start(
        db,
        Settings {
            debug,
            ..Settings::default()
        },
    )
    .await
}

/// A server in debug mode (plain http on loopback) with a staff user `admin` logged in.
async fn admin_session(db: &TestDatabase) -> (TestServer, Client) {
    let server = start(db, true).await;
    toolbox::create_user(&**server.store(), "admin", PASSWORD, true)
        .await
        .unwrap();
    let browser = server.browser();
    flows::log_in(&browser, &server, "admin", PASSWORD).await;
    (server, browser)
}

async fn get(browser: &Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = browser.get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Posts `fields` to `path` with the CSRF token of the page at `form_page`.
async fn post(
    browser: &Client,
    server: &TestServer,
    form_page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (_, page) = get(browser, server, form_page).await;
    let token = csrf_token(&page).expect("the page has a CSRF token");
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrfmiddlewaretoken", &token));
    browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn client_count(server: &TestServer) -> i64 {
    server
        .store()
        .client_page(
            &ClientFilter::default(),
            ClientSort::DEFAULT,
            PageRequest {
                offset: 0,
                limit: 0,
            },
        )
        .await
        .unwrap()
        .total
}

async fn only_staff_get_in(db: &TestDatabase) {
    let server = start(db, true).await;
    flows::user(server.store(), "bob", PASSWORD).await;
    let anonymous = server.browser();
    for path in [
        "/admin/",
        "/admin/tokens/?status=active",
        "/admin/clients/add/",
    ] {
        let response = anonymous.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{path}");
        let location = flows::location(&response);
        assert!(location.starts_with("/login/?next="), "{location}");
    }
    let response = anonymous
        .post(server.url("/admin/tokens/"))
        .form(&[("ids", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);

    let bob = server.browser();
    flows::log_in(&bob, &server, "bob", PASSWORD).await;
    let response = bob.get(server.url("/admin/users/")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "a non-staff user is refused"
    );
    assert!(flows::location(&response).starts_with("/login/"));

    // Promoted to staff, bob gets in; deactivated, he is out at once.
    let user = server.store().find_user("bob").await.unwrap().unwrap();
    server
        .store()
        .update_user(user.id, true, true, None)
        .await
        .unwrap();
    let (status, page) = get(&bob, &server, "/admin/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Administration"));
    server
        .store()
        .update_user(user.id, false, true, None)
        .await
        .unwrap();
    let response = bob.get(server.url("/admin/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
}

async fn pages_carry_security_headers_and_refuse_plain_http(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let response = browser
        .get(server.url("/admin/scopes/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let secure_only = start(db, false).await;
    let response = server
        .browser()
        .get(secure_only.url("/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn forms_need_the_csrf_token(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let response = browser
        .post(server.url("/admin/scopes/add/"))
        .form(&[("identifier", "polls:index"), ("title", "Index")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser
        .post(server.url("/admin/scopes/add/"))
        .form(&[
            ("identifier", "polls:index"),
            ("title", "Index"),
            ("csrfmiddlewaretoken", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(server.store().list_scopes().await.unwrap().is_empty());
}

async fn scopes_are_validated_listed_and_changed(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let add = "/admin/scopes/add/";
    let response = post(
        &browser,
        &server,
        add,
        add,
        &[
            ("identifier", "polls:index"),
            ("title", "Polls index"),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (_, list) = get(&browser, &server, "/admin/scopes/").await;
    assert!(
        list.contains("Scope &quot;Polls index&quot; added.")
            || list.contains("Scope \"Polls index\" added."),
        "flash shown: {list}"
    );
    assert!(list.contains("polls:index"));

    // Bad input: re-displayed with errors next to the fields, values kept, nothing saved.
    for (identifier, title, field, message) in [
        ("polls:index", "Other", "identifier", "already taken"),
        ("has space", "Spaces", "identifier", "not allowed"),
        ("", "Empty id", "identifier", "must not be empty"),
        ("polls:vote", "   ", "title", "must not be empty"),
    ] {
        let response = post(
            &browser,
            &server,
            add,
            add,
            &[("identifier", identifier), ("title", title)],
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{identifier:?}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{identifier:?}: {page}"
        );
        assert!(page.contains(message), "{identifier:?}: {message}");
        assert!(
            page.contains(&format!("value=\"{}\"", identifier)),
            "value kept"
        );
    }
    assert_eq!(server.store().list_scopes().await.unwrap().len(), 1);

    // Search and filter.
    let (_, other) = (
        0,
        post(
            &browser,
            &server,
            add,
            add,
            &[("identifier", "blog:read"), ("title", "Blog")],
        )
        .await,
    );
    assert_eq!(other.status(), StatusCode::FOUND);
    let (_, found) = get(&browser, &server, "/admin/scopes/?q=BLOG").await;
    assert!(found.contains("blog:read") && !found.contains("polls:index"));
    let (_, disabled) = get(&browser, &server, "/admin/scopes/?enabled=no").await;
    assert!(disabled.contains("blog:read") && !disabled.contains("polls:index"));

    // Enable several at once, then delete with confirmation.
    let ids: Vec<String> = server
        .store()
        .list_scopes()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|id| ("ids", id.as_str())).collect();
    fields.push(("action", "enable"));
    let response = post(
        &browser,
        &server,
        "/admin/scopes/",
        "/admin/scopes/",
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(server
        .store()
        .list_scopes()
        .await
        .unwrap()
        .iter()
        .all(|s| s.enabled));
    let response = post(
        &browser,
        &server,
        "/admin/scopes/",
        "/admin/scopes/",
        &[("ids", &ids[0]), ("action", "delete")],
    )
    .await;
    let confirmation = response.text().await.unwrap();
    assert!(confirmation.contains("Yes, delete"));
    assert_eq!(
        server.store().list_scopes().await.unwrap().len(),
        2,
        "not deleted before confirming"
    );
    let response = post(
        &browser,
        &server,
        "/admin/scopes/",
        "/admin/scopes/delete/",
        &[("ids", &ids[0])],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(server.store().list_scopes().await.unwrap().len(), 1);
}

async fn client_forms_refuse_bad_input_without_saving(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    toolbox::add_scope(&**server.store(), "polls:index", None, true)
        .await
        .unwrap();
    let add = "/admin/clients/add/";
    let good = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![
            ("title", "Polls client"),
            ("identifier", "polls-client"),
            ("client_type", "confidential"),
            ("token_lifetime", "3600"),
            ("grant_types", "authorization_code"),
            ("redirect_uris", "https://client.example/cb"),
        ];
        for (name, value) in extra {
            fields.retain(|(n, _)| n != name);
            fields.push((name, value));
        }
        fields
    };
    let response = post(&browser, &server, add, add, &good(&[])).await;
    assert_eq!(response.status(), StatusCode::OK, "the secret page");
    let page = response.text().await.unwrap();
    assert!(page.contains("will not be shown again"));
    assert_eq!(client_count(&server).await, 1);

    /// Changes to the good form, the field that must show an error, and part of its text.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("identifier", "other")], "title", "already taken"),
        (&[("title", "Other")], "identifier", "already taken"),
        (
            &[("title", ""), ("identifier", "x1")],
            "title",
            "must not be empty",
        ),
        (
            &[
                ("title", "T1"),
                ("identifier", "x1"),
                ("token_lifetime", "one hour"),
            ],
            "token_lifetime",
            "whole number",
        ),
        (
            &[
                ("title", "T2"),
                ("identifier", "x2"),
                ("token_lifetime", "0"),
            ],
            "token_lifetime",
            "between 1",
        ),
        (
            &[("title", "T3"), ("identifier", "has space")],
            "identifier",
            "without spaces",
        ),
        (
            &[
                ("title", "T4"),
                ("identifier", "x4"),
                ("redirect_uris", "javascript:alert(1)"),
            ],
            "redirect_uris",
            "not allowed",
        ),
        (
            &[
                ("title", "T5"),
                ("identifier", "x5"),
                ("redirect_uris", "data:text/html,hi"),
            ],
            "redirect_uris",
            "not allowed",
        ),
        (
            &[
                ("title", "T6"),
                ("identifier", "x6"),
                ("redirect_uris", "/relative/cb"),
            ],
            "redirect_uris",
            "must be absolute",
        ),
        (
            &[
                ("title", "T7"),
                ("identifier", "x7"),
                ("redirect_uris", "https://c.example/cb#frag"),
            ],
            "redirect_uris",
            "fragment",
        ),
        (
            &[("title", "T8"), ("identifier", "x8"), ("grant_types", "")],
            "grant_types",
            "at least one grant",
        ),
        (
            &[("title", "T9"), ("identifier", "x9"), ("link", "ftp://x")],
            "link",
            "absolute http",
        ),
    ];
    for (changes, field, message) in cases {
        let fields = good(changes);
        let response = post(&browser, &server, add, add, &fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{changes:?}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{changes:?}"
        );
        assert!(page.contains(message), "{changes:?}: wants {message:?}");
        let title = fields.iter().find(|(n, _)| *n == "title").unwrap().1;
        assert!(page.contains(&format!("value=\"{title}\"")), "title kept");
        assert_eq!(
            client_count(&server).await,
            1,
            "nothing saved for {changes:?}"
        );
    }
}

async fn plain_http_redirects_are_refused_outside_debug_mode(db: &TestDatabase) {
    // The admin site itself is served over https here (a trusted proxy says so), and not
    // in debug mode: plain http to a non-loopback host is refused, loopback accepted.
    let server = TestServer::start(
        db,
        Settings {
            trust_forwarded_proto: true,
            ..Settings::default()
        },
    )
    .await;
    toolbox::create_user(&**server.store(), "admin", PASSWORD, true)
        .await
        .unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-proto"),
                reqwest::header::HeaderValue::from_static("https"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    flows::log_in(&browser, &server, "admin", PASSWORD).await;
    let add = "/admin/clients/add/";
    let fields = |uri: &'static str| {
        vec![
            ("title", "App"),
            ("client_type", "public"),
            ("token_lifetime", "60"),
            ("grant_types", "authorization_code"),
            ("redirect_uris", uri),
        ]
    };
    let response = post(
        &browser,
        &server,
        add,
        add,
        &fields("http://client.example/cb"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("plain http"));
    assert_eq!(client_count(&server).await, 0);
    let response = post(
        &browser,
        &server,
        add,
        add,
        &fields("http://127.0.0.1:9000/cb"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(client_count(&server).await, 1);
}

async fn a_client_page_manages_endpoints_secrets_and_tokens(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("Polls client", "admin")
            .identifier("1234")
            .public(false)
            .redirect_uri("https://client.example/one")
            .scopes(["polls:index"]),
    )
    .await;
    let id = registered.client.id;
    let page_path = format!("/admin/clients/{id}/");
    let redirects = format!("/admin/clients/{id}/redirects/");

    // Inline redirect endpoints: the same validation as the command line.
    let response = post(
        &browser,
        &server,
        &page_path,
        &redirects,
        &[("uri", "javascript:x")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"uri-error\"") && page.contains("value=\"javascript:x\""));
    let response = post(
        &browser,
        &server,
        &page_path,
        &redirects,
        &[("uri", "https://client.example/one")],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate"
    );
    let response = post(
        &browser,
        &server,
        &page_path,
        &redirects,
        &[("uri", "https://client.example/two")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(server.store().redirect_uris(id).await.unwrap().len(), 2);

    // A new secret is shown once; the old one stops working.
    let response = post(
        &browser,
        &server,
        &page_path,
        &format!("/admin/clients/{id}/secret/"),
        &[],
    )
    .await;
    let page = response.text().await.unwrap();
    let shown = page
        .split("id=\"shown-once\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let client = server
        .store()
        .find_client_by_key(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.secret_hash, Some(Secret::new(shown.clone()).hash()));
    let (_, again) = get(&browser, &server, &page_path).await;
    assert!(!again.contains(&shown), "a secret is never shown twice");

    // A token issued here is shown once, listed by fingerprint, then revoked.
    let response = post(
        &browser,
        &server,
        &page_path,
        &format!("/admin/clients/{id}/token/"),
        &[("username", "admin"), ("scope", "polls:index")],
    )
    .await;
    let page = response.text().await.unwrap();
    let token = page
        .split("id=\"shown-once\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let info = server
        .server
        .check_access_token(&token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.username.as_deref(), Some("admin"));
    let (_, listed) = get(&browser, &server, "/admin/tokens/?q=admin").await;
    assert!(!listed.contains(&token), "never the token itself");
    let fingerprint =
        oauthost::store::admin::fingerprint(Secret::new(token.clone()).hash().as_bytes());
    assert!(listed.contains(&fingerprint) && listed.contains("badge active"));
    let token_id = info.token.id.to_string();
    let response = post(
        &browser,
        &server,
        "/admin/tokens/",
        "/admin/tokens/",
        &[("ids", &token_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(server
        .server
        .check_access_token(&token)
        .await
        .unwrap()
        .is_none());
    let (_, listed) = get(&browser, &server, "/admin/tokens/?status=revoked").await;
    assert!(listed.contains(&fingerprint) && listed.contains("1 token(s) revoked."));

    // Editing: the scope restriction as a multiple select, lifetime validated.
    let scope_id = server.store().list_scopes().await.unwrap()[0]
        .id
        .to_string();
    let edit = [
        ("title", "Polls client v2"),
        ("identifier", "1234"),
        ("client_type", "confidential"),
        ("token_lifetime", "60"),
        ("grant_types", "authorization_code"),
        ("grant_types", "refresh_token"),
        ("scopes", scope_id.as_str()),
        ("hash_sign_supported", "on"),
    ];
    let response = post(&browser, &server, &page_path, &page_path, &edit).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let client = server
        .store()
        .find_client_by_key(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (client.title.as_str(), client.token_lifetime),
        ("Polls client v2", 60)
    );
    let mut bad = edit.to_vec();
    bad[3] = ("token_lifetime", "-5");
    let response = post(&browser, &server, &page_path, &page_path, &bad).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        server
            .store()
            .find_client_by_key(id)
            .await
            .unwrap()
            .unwrap()
            .token_lifetime,
        60,
        "nothing half-saved"
    );

    // Delete after confirmation.
    let (_, confirm) = get(&browser, &server, &format!("/admin/clients/{id}/delete/")).await;
    assert!(confirm.contains("Yes, delete"));
    let response = post(
        &browser,
        &server,
        &page_path,
        &format!("/admin/clients/{id}/delete/"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(server
        .store()
        .find_client_by_key(id)
        .await
        .unwrap()
        .is_none());
}

async fn tokens_are_filtered_paginated_and_drilled_down_by_date(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("Filler", "admin").identifier("filler"),
    )
    .await;
    let now = server.server.now();
    // 120 tokens over three days of 2025, every tenth one revoked.
    let base = time::macros::datetime!(2025-03-30 12:00 UTC);
    for i in 0..120_i64 {
        let issued_at = base + time::Duration::days(i % 3);
        let token = server
            .store()
            .insert_token(NewToken {
                access_token_hash: Secret::generate().hash(),
                refresh_token_hash: None,
                user_id: None,
                client_id: registered.client.id,
                code_id: None,
                scopes: "polls:index".parse().unwrap(),
                issued_at,
                expires_at: now + time::Duration::hours(1),
                refresh_family: None,
            })
            .await
            .unwrap();
        if i % 10 == 0 {
            server.store().revoke_token(token.id).await.unwrap();
        }
    }
    let (_, page) = get(&browser, &server, "/admin/tokens/").await;
    assert!(page.contains("1–50 of 120") && page.contains("rel=\"next\""));
    let (_, page) = get(&browser, &server, "/admin/tokens/?p=3").await;
    assert!(page.contains("101–120 of 120") && !page.contains("rel=\"next\""));
    let (_, page) = get(&browser, &server, "/admin/tokens/?status=revoked").await;
    assert!(page.contains("of 12"));
    let (_, page) = get(
        &browser,
        &server,
        "/admin/tokens/?status=active&type=refresh",
    )
    .await;
    assert!(page.contains("0 results"));
    // Years, then months with counts, then days.
    let (_, page) = get(&browser, &server, "/admin/tokens/").await;
    assert!(page.contains("?year=2025"));
    let (_, page) = get(&browser, &server, "/admin/tokens/?year=2025").await;
    assert!(
        page.contains("March 2025 (80)") && page.contains("April 2025 (40)"),
        "{page}"
    );
    let (_, page) = get(&browser, &server, "/admin/tokens/?year=2025&month=3&day=31").await;
    assert!(page.contains("of 40"));
    let (_, page) = get(&browser, &server, "/admin/tokens/?o=-client&client=999999").await;
    assert!(page.contains("0 results"));
}

async fn users_follow_the_command_line_rules(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let add = "/admin/users/add/";
    for (fields, field) in [
        (
            vec![
                ("username", "with space"),
                ("password", "pw"),
                ("password2", "pw"),
            ],
            "username",
        ),
        (
            vec![("username", "carol"), ("password", ""), ("password2", "")],
            "password",
        ),
        (
            vec![
                ("username", "carol"),
                ("password", "one"),
                ("password2", "two"),
            ],
            "password2",
        ),
        (
            vec![
                ("username", "admin"),
                ("password", "pw"),
                ("password2", "pw"),
            ],
            "username",
        ),
    ] {
        let response = post(&browser, &server, add, add, &fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{fields:?}"
        );
        assert!(
            !page.contains("value=\"pw\""),
            "passwords are never sent back"
        );
    }
    assert!(server.store().find_user("carol").await.unwrap().is_none());
    let response = post(
        &browser,
        &server,
        add,
        add,
        &[
            ("username", "carol"),
            ("password", "s3cret pw"),
            ("password2", "s3cret pw"),
            ("is_active", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let carol = server.store().find_user("carol").await.unwrap().unwrap();
    assert!(carol.is_active && !carol.is_staff);
    // Set a new password and make her staff: she can then log in with it and get in.
    let path = format!("/admin/users/{}/", carol.id);
    let response = post(
        &browser,
        &server,
        &path,
        &path,
        &[
            ("password", "new pw"),
            ("password2", "new pw"),
            ("is_active", "on"),
            ("is_staff", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let her = server.browser();
    flows::log_in(&her, &server, "carol", "new pw").await;
    assert_eq!(get(&her, &server, "/admin/").await.0, StatusCode::OK);
    // Operators cannot lock themselves out.
    let me = server.store().find_user("admin").await.unwrap().unwrap();
    let path = format!("/admin/users/{}/", me.id);
    let response = post(&browser, &server, &path, &path, &[("is_active", "on")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        server
            .store()
            .find_user("admin")
            .await
            .unwrap()
            .unwrap()
            .is_staff
    );
    let (_, page) = get(&browser, &server, "/admin/users/?staff=yes&o=-username").await;
    assert!(page.find("/\">carol</a>").unwrap() < page.find("/\">admin</a>").unwrap());
}

async fn every_action_needs_staff_and_the_csrf_token(db: &TestDatabase) {
    let (server, admin) = admin_session(db).await;
    flows::user(server.store(), "bob", PASSWORD).await;
    toolbox::add_scope(&**server.store(), "polls:index", None, true)
        .await
        .unwrap();
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("App", "admin")
            .public(false)
            .redirect_uri("https://client.example/cb"),
    )
    .await;
    let id = registered.client.id;
    let issued = server
        .server
        .issue_token_manually(&registered.client, None, "polls:index".parse().unwrap())
        .await
        .unwrap();
    let scope_id = server.store().list_scopes().await.unwrap()[0]
        .id
        .to_string();
    let endpoint = server.store().redirect_endpoints(id).await.unwrap()[0].id;
    let actions: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "/admin/scopes/".into(),
            vec![("ids", scope_id.clone()), ("action", "disable".into())],
        ),
        (
            "/admin/scopes/delete/".into(),
            vec![("ids", scope_id.clone())],
        ),
        (
            format!("/admin/scopes/{scope_id}/"),
            vec![("identifier", "x".into()), ("title", "X".into())],
        ),
        (
            "/admin/clients/add/".into(),
            vec![
                ("title", "Other".into()),
                ("client_type", "public".into()),
                ("token_lifetime", "60".into()),
                ("grant_types", "authorization_code".into()),
            ],
        ),
        (
            format!("/admin/clients/{id}/"),
            vec![
                ("title", "Renamed".into()),
                ("identifier", "renamed".into()),
                ("client_type", "confidential".into()),
                ("token_lifetime", "60".into()),
                ("grant_types", "authorization_code".into()),
            ],
        ),
        (
            format!("/admin/clients/{id}/redirects/"),
            vec![("uri", "https://client.example/new".into())],
        ),
        (
            format!("/admin/clients/{id}/redirects/{endpoint}/delete/"),
            vec![],
        ),
        (format!("/admin/clients/{id}/secret/"), vec![]),
        (
            format!("/admin/clients/{id}/token/"),
            vec![("scope", "polls:index".into())],
        ),
        (
            "/admin/tokens/".into(),
            vec![("ids", issued_id(&server, &issued.access_token).await)],
        ),
        ("/admin/codes/".into(), vec![("ids", "1".into())]),
        (
            "/admin/users/add/".into(),
            vec![
                ("username", "eve".into()),
                ("password", "pw".into()),
                ("password2", "pw".into()),
            ],
        ),
        (
            format!("/admin/users/{}/", user_id(&server, "bob").await),
            vec![("is_active", "on".into()), ("is_staff", "on".into())],
        ),
        (format!("/admin/clients/{id}/delete/"), vec![]),
    ];
    let bob = server.browser();
    flows::log_in(&bob, &server, "bob", PASSWORD).await;
    let bob_token = flows::login_csrf_token(&bob, &server).await;
    let snapshot = || async {
        let store = server.store();
        (
            store.list_scopes().await.unwrap(),
            store.list_clients().await.unwrap(),
            store.redirect_endpoints(id).await.unwrap(),
            store.list_users().await.unwrap(),
            server
                .server
                .check_access_token(issued.access_token.expose())
                .await
                .unwrap()
                .is_some(),
        )
    };
    let before = snapshot().await;
    for (path, fields) in &actions {
        // The staff session with a forged token, then bob's session with his own token.
        for (browser, token, refused) in [
            (&admin, "forged", StatusCode::FORBIDDEN),
            (&admin, "", StatusCode::FORBIDDEN),
            (&bob, bob_token.as_str(), StatusCode::FOUND),
        ] {
            let mut form: Vec<(&str, &str)> =
                fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            form.push(("csrfmiddlewaretoken", token));
            let response = browser
                .post(server.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), refused, "{path} with {token:?}");
            if refused == StatusCode::FOUND {
                assert!(flows::location(&response).starts_with("/login/"), "{path}");
            }
        }
    }
    assert_eq!(snapshot().await, before, "nothing changed");
}

async fn issued_id(server: &TestServer, token: &Secret) -> String {
    let info = server
        .server
        .check_access_token(token.expose())
        .await
        .unwrap()
        .unwrap();
    info.token.id.to_string()
}

async fn user_id(server: &TestServer, username: &str) -> i64 {
    server
        .store()
        .find_user(username)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn a_scope_that_restricts_a_client_alone_cannot_be_deleted(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    for scope in ["read", "admin:all"] {
        toolbox::add_scope(&**server.store(), scope, None, true)
            .await
            .unwrap();
    }
    flows::client(
        server.store(),
        ClientRegistration::new("Reader", "admin").scopes(["read"]),
    )
    .await;
    let read = server.store().list_scopes().await.unwrap();
    let read = read
        .iter()
        .find(|s| s.identifier.as_str() == "read")
        .unwrap()
        .id
        .to_string();
    let response = post(
        &browser,
        &server,
        "/admin/scopes/",
        "/admin/scopes/",
        &[("ids", &read), ("action", "delete")],
    )
    .await;
    let page = response.text().await.unwrap();
    assert!(
        page.contains("cannot be deleted: Reader would be left without any scope"),
        "{page}"
    );
    assert!(!page.contains("Yes, delete"));
    let response = post(
        &browser,
        &server,
        "/admin/scopes/",
        "/admin/scopes/delete/",
        &[("ids", &read)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        server.store().list_scopes().await.unwrap().len(),
        2,
        "nothing deleted"
    );
    let (_, page) = get(&browser, &server, "/admin/scopes/").await;
    assert!(page.contains("Nothing deleted: deleting would leave Reader without any scope"));
}

async fn search_folds_case_alike_on_both_databases(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    flows::client(server.store(), ClientRegistration::new("Élan app", "admin")).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Polls 50% off", "admin"),
    )
    .await;
    for (query, found) in [
        ("%C3%89lan", true),
        ("lan%20APP", true),
        ("50%25", true),
        ("5_%25", false),
        ("%25off", false),
    ] {
        let (_, page) = get(&browser, &server, &format!("/admin/clients/?q={query}")).await;
        assert_eq!(page.contains("1 result<"), found, "{query}");
    }
}

async fn a_failed_client_update_changes_nothing(db: &TestDatabase) {
    let (server, _) = admin_session(db).await;
    toolbox::add_scope(&**server.store(), "read", None, true)
        .await
        .unwrap();
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("App", "admin")
            .identifier("app")
            .scopes(["read"]),
    )
    .await;
    flows::client(
        server.store(),
        ClientRegistration::new("Taken", "admin").identifier("taken"),
    )
    .await;
    let id = registered.client.id;
    let mut changes = ClientChanges {
        identifier: "renamed".into(),
        title: "Renamed".into(),
        client_type: ClientType::Public,
        description: "changed".into(),
        link: None,
        token_lifetime: 60,
        hash_sign_supported: false,
        grant_types: GrantTypes::default(),
        scope_ids: vec![i64::MAX],
    };
    // An unknown scope is found after the client row was updated and the restriction
    // cleared: the transaction must undo both.
    let error = server
        .store()
        .update_client(id, &changes)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound { what: "scope", .. }),
        "{error}"
    );
    changes.scope_ids.clear();
    changes.title = "Taken".into();
    let error = server
        .store()
        .update_client(id, &changes)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Duplicate {
                what: "client title",
                ..
            }
        ),
        "{error}"
    );
    let client = server
        .store()
        .find_client_by_key(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client, registered.client);
    let scopes = server.store().client_scopes(id).await.unwrap();
    assert_eq!(scopes.len(), 1, "the restriction is intact");
}

async fn issuing_a_token_explains_refusals_next_to_the_form(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    toolbox::add_scope(&**server.store(), "read", None, true)
        .await
        .unwrap();
    let public = flows::client(
        server.store(),
        ClientRegistration::new("Mobile", "admin")
            .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .scopes(["read"]),
    )
    .await;
    let id = public.client.id;
    let page = format!("/admin/clients/{id}/");
    let action = format!("/admin/clients/{id}/token/");
    for (fields, message) in [
        (
            vec![("username", "nobody"), ("scope", "read")],
            "No active user is called",
        ),
        (
            vec![("username", ""), ("scope", "read")],
            "cannot hold a token of its own",
        ),
        (
            vec![("username", "admin"), ("scope", "write")],
            "Unknown or unavailable scope",
        ),
    ] {
        let response = post(&browser, &server, &page, &action, &fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains("id=\"token-error\"") && html.contains(message),
            "{fields:?}: {html}"
        );
        let username = fields[0].1;
        assert!(html.contains(&format!(
            "id=\"token-username\" name=\"username\" value=\"{username}\""
        )));
    }
    // A user's token comes with its refresh token, both shown once.
    let response = post(
        &browser,
        &server,
        &page,
        &action,
        &[("username", "admin"), ("scope", "read")],
    )
    .await;
    let html = response.text().await.unwrap();
    let shown = |id: &str| {
        html.split(&format!("id=\"{id}\">"))
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .map(str::to_owned)
    };
    let refresh = shown("shown-once-2").expect("the refresh token is shown");
    let details = server
        .store()
        .find_token_details(&Secret::new(refresh).hash(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(details.username.as_deref(), Some("admin"));
    assert!(shown("shown-once").is_some());
}

async fn removing_a_redirect_uri_asks_first(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("App", "admin").redirect_uri("https://client.example/cb"),
    )
    .await;
    let id = registered.client.id;
    let endpoint = server.store().redirect_endpoints(id).await.unwrap()[0].id;
    let path = format!("/admin/clients/{id}/redirects/{endpoint}/delete/");
    let (status, page) = get(&browser, &server, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("client.example") && page.contains("Yes, remove"));
    assert_eq!(server.store().redirect_uris(id).await.unwrap().len(), 1);
    let response = post(&browser, &server, &path, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(server.store().redirect_uris(id).await.unwrap().is_empty());
}

async fn a_client_made_confidential_gets_a_secret_shown_once(db: &TestDatabase) {
    let (server, browser) = admin_session(db).await;
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("App", "admin").identifier("app"),
    )
    .await;
    assert!(registered.client.secret_hash.is_none());
    let path = format!("/admin/clients/{}/", registered.client.id);
    let response = post(
        &browser,
        &server,
        &path,
        &path,
        &[
            ("title", "App"),
            ("identifier", "app"),
            ("client_type", "confidential"),
            ("token_lifetime", "3600"),
            ("grant_types", "client_credentials"),
        ],
    )
    .await;
    let html = response.text().await.unwrap();
    let secret = html
        .split("id=\"shown-once\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap();
    let client = server.store().find_client("app").await.unwrap().unwrap();
    assert_eq!(
        client.secret_hash,
        Some(Secret::new(secret.to_owned()).hash())
    );
}

async fn a_new_password_ends_the_sessions_of_the_old_one(db: &TestDatabase) {
    let (server, admin) = admin_session(db).await;
    toolbox::create_user(&**server.store(), "carol", PASSWORD, true)
        .await
        .unwrap();
    let carol = server.browser();
    flows::log_in(&carol, &server, "carol", PASSWORD).await;
    assert_eq!(get(&carol, &server, "/admin/").await.0, StatusCode::OK);
    let path = format!("/admin/users/{}/", user_id(&server, "carol").await);
    let response = post(
        &admin,
        &server,
        &path,
        &path,
        &[
            ("password", "new pw"),
            ("password2", "new pw"),
            ("is_active", "on"),
            ("is_staff", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(get(&carol, &server, "/admin/").await.0, StatusCode::FOUND);
    let (_, login) = get(&carol, &server, "/login/").await;
    assert!(
        !login.contains("logged in as"),
        "the old session is logged out"
    );
    // The operator who made the change stays logged in.
    assert_eq!(get(&admin, &server, "/admin/").await.0, StatusCode::OK);
}

/// A server in debug mode with the token and client caches on.
async fn start_with_cache(db: &TestDatabase) -> TestServer {
    TestServer::start(
        db,
        Settings {
            debug: true,
            token_cache_ttl: std::time::Duration::from_secs(600),
            ..Settings::default()
        },
    )
    .await
}

async fn a_new_secret_from_the_admin_site_is_required_at_once_with_the_cache_on(db: &TestDatabase) {
    let server = start_with_cache(db).await;
    toolbox::create_user(&**server.store(), "admin", PASSWORD, true)
        .await
        .unwrap();
    toolbox::add_scope(&**server.store(), "read", None, true)
        .await
        .unwrap();
    let registered = flows::client(
        server.store(),
        ClientRegistration::new("Service", "admin")
            .identifier("service")
            .public(false)
            .grant_types([GrantType::ClientCredentials])
            .scopes(["read"]),
    )
    .await;
    let old = registered.secret.unwrap();
    let grant = [("grant_type", "client_credentials")];
    // The client is now in the cache.
    let (status, _) = flows::token(&server, Some(("service", old.expose())), &grant).await;
    assert_eq!(status, StatusCode::OK);
    let browser = server.browser();
    flows::log_in(&browser, &server, "admin", PASSWORD).await;
    let path = format!("/admin/clients/{}/", registered.client.id);
    let response = post(&browser, &server, &path, &format!("{path}secret/"), &[]).await;
    let html = response.text().await.unwrap();
    let new = html
        .split("id=\"shown-once\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let (status, body) = flows::token(&server, Some(("service", old.expose())), &grant).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = flows::token(&server, Some(("service", &new)), &grant).await;
    assert_eq!(status, StatusCode::OK);
}

/// What a `client_credentials` request of `service` for `scope` gets (the granted scope,
/// or the error code), once it is `expected`: PostgreSQL tells the cache of a change by a
/// notification, delivered within milliseconds.
async fn eventually_granted(
    server: &TestServer,
    secret: &str,
    scope: Option<&str>,
    expected: &str,
) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend(scope.map(|scope| ("scope", scope)));
    let mut got = String::new();
    for _ in 0..50 {
        let (status, body) = flows::token(server, Some(("service", secret)), &form).await;
        let key = if status == StatusCode::OK {
            "scope"
        } else {
            "error"
        };
        got = body[key].as_str().unwrap_or_default().to_owned();
        if got == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("got {got}, expected {expected}");
}

async fn scope_changes_reach_issuance_at_once_with_the_cache_on(db: &TestDatabase) {
    let server = start_with_cache(db).await;
    let store = server.store();
    toolbox::create_user(&**store, "admin", PASSWORD, true)
        .await
        .unwrap();
    let read = toolbox::add_scope(&**store, "read", None, true)
        .await
        .unwrap();
    let registered = flows::client(
        store,
        ClientRegistration::new("Service", "admin")
            .identifier("service")
            .public(false)
            .grant_types([GrantType::ClientCredentials]),
    )
    .await;
    let secret = registered.secret.unwrap();
    let secret = secret.expose();
    // Unrestricted: any enabled scope. What it may have is now cached.
    eventually_granted(&server, secret, Some("read"), "read").await;
    eventually_granted(&server, secret, Some("write"), "invalid_scope").await;
    // A new scope may be granted at once...
    let write = toolbox::add_scope(&**store, "write", None, true)
        .await
        .unwrap();
    eventually_granted(&server, secret, Some("read write"), "read write").await;
    // ...a disabled one is withheld at once...
    store.set_scopes_enabled(&[read.id], false).await.unwrap();
    eventually_granted(&server, secret, Some("read"), "invalid_scope").await;
    // ...and restricting the client applies at once.
    store.set_scopes_enabled(&[read.id], true).await.unwrap();
    eventually_granted(&server, secret, Some("read"), "read").await;
    let client = registered.client;
    let changes = ClientChanges {
        identifier: client.identifier,
        title: client.title,
        client_type: client.client_type,
        description: client.description,
        link: client.link,
        token_lifetime: client.token_lifetime,
        hash_sign_supported: client.hash_sign_supported,
        grant_types: client.grant_types,
        scope_ids: vec![write.id],
    };
    assert!(store.update_client(client.id, &changes).await.unwrap());
    eventually_granted(&server, secret, None, "write").await;
}

backend_tests!(
    scope_changes_reach_issuance_at_once_with_the_cache_on,
    only_staff_get_in,
    pages_carry_security_headers_and_refuse_plain_http,
    forms_need_the_csrf_token,
    scopes_are_validated_listed_and_changed,
    client_forms_refuse_bad_input_without_saving,
    plain_http_redirects_are_refused_outside_debug_mode,
    a_client_page_manages_endpoints_secrets_and_tokens,
    tokens_are_filtered_paginated_and_drilled_down_by_date,
    users_follow_the_command_line_rules,
    every_action_needs_staff_and_the_csrf_token,
    a_scope_that_restricts_a_client_alone_cannot_be_deleted,
    search_folds_case_alike_on_both_databases,
    a_failed_client_update_changes_nothing,
    issuing_a_token_explains_refusals_next_to_the_form,
    removing_a_redirect_uri_asks_first,
    a_client_made_confidential_gets_a_secret_shown_once,
    a_new_password_ends_the_sessions_of_the_old_one,
    a_new_secret_from_the_admin_site_is_required_at_once_with_the_cache_on,
);
