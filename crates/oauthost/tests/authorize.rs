//! `/auth/`, `/login/` and `/logout/` over a real socket, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauthost::{server::Settings, toolbox::ClientRegistration};
use oauthost_core::client::GrantType;
use oauthost_testkit::{
    backend_tests, csrf_token,
    flows::{self, consent_page, decide, fragment_param, location, log_in, query_param},
    TestDatabase, TestServer,
};
use reqwest::StatusCode;

const CB: &str = "https://app.example/cb";
/// A PKCE challenge (RFC 7636 appendix B).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn debug() -> Settings {
    Settings {
        debug: true,
        ..Settings::default()
    }
}

/// A debug-mode server with user alice and a confidential client `app` restricted to
/// `polls:index` and `polls:vote`.
async fn setup(db: &TestDatabase) -> TestServer {
    let server = TestServer::start(db, debug()).await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("Polls App", "alice")
            .identifier("app")
            .redirect_uri(CB)
            .scopes(["polls:index", "polls:vote"])
            .public(false)
            .secret("s3cret"),
    )
    .await;
    server
}

async fn plain_http_is_refused_outside_debug_mode(db: &TestDatabase) {
    let server = TestServer::start(db, Settings::default()).await;
    let http = reqwest::Client::new();
    let page = http
        .get(server.url("/auth/?client_id=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("OAuth 2.0 requires secure connection"));
    let token = http
        .post(server.url("/token/"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "OAuth 2.0 requires secure connection"
    );
    // A forwarded https is not trusted unless the operator says so.
    let forged = http
        .get(server.url("/login/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let proxied = TestServer::start(
        db,
        Settings {
            trust_forwarded_proto: true,
            ..Settings::default()
        },
    )
    .await;
    let behind_proxy = http
        .get(proxied.url("/login/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(behind_proxy.status(), StatusCode::OK);
    let cookie = behind_proxy.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    let direct = http.get(proxied.url("/login/")).send().await.unwrap();
    assert_eq!(
        direct.status(),
        StatusCode::FORBIDDEN,
        "no header, no https"
    );
}

async fn auth_sends_anonymous_users_to_login_and_back(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    let query = "client_id=app&response_type=code&state=a%26b";
    let response = browser
        .get(server.url(&format!("/auth/?{query}")))
        .send()
        .await
        .unwrap();
    let login = location(&response);
    assert!(login.starts_with("/login/?next="), "{login}");
    let next = query_param(&format!("http://x{login}"), "next").unwrap();
    assert_eq!(next, format!("/auth/?{query}"));

    let page = browser.get(server.url(&login)).send().await.unwrap();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(page.headers()[name], value, "{name}");
    }
    let before_login = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        before_login.contains("HttpOnly") && before_login.contains("SameSite=Lax"),
        "{before_login}"
    );
    assert!(!before_login.contains("Secure"), "plain http in debug mode");
    let html = page.text().await.unwrap();
    let response = browser
        .post(server.url("/login/"))
        .form(&[
            ("username", "alice"),
            ("password", "pw"),
            ("next", next.as_str()),
            ("csrfmiddlewaretoken", &csrf_token(&html).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let after_login = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        before_login.split(';').next(),
        after_login.split(';').next(),
        "the session id is renewed at login"
    );
    assert_eq!(location(&response), next);
    let consent = browser.get(server.url(&next)).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    assert_eq!(consent.headers()["x-frame-options"], "DENY");
    let html = consent.text().await.unwrap();
    assert!(html.contains("Polls App"), "names the client");
    assert!(
        html.contains("polls:index") && html.contains("Polls Vote"),
        "lists the scopes"
    );
}

async fn login_refuses_forged_posts_and_foreign_next(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    let token = flows::login_csrf_token(&browser, &server).await;
    let forged = browser
        .post(server.url("/login/"))
        .form(&[
            ("username", "alice"),
            ("password", "pw"),
            ("csrfmiddlewaretoken", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let anonymous = server.browser();
    let no_session = anonymous
        .post(server.url("/login/"))
        .form(&[
            ("username", "alice"),
            ("password", "pw"),
            ("csrfmiddlewaretoken", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_session.status(),
        StatusCode::FORBIDDEN,
        "a token of another session"
    );
    // Still logged out: /auth/ sends to the login page.
    let auth = browser
        .get(server.url("/auth/?client_id=app&response_type=code"))
        .send()
        .await
        .unwrap();
    assert!(location(&auth).starts_with("/login/"));

    let response = browser
        .post(server.url("/login/"))
        .form(&[
            ("username", "alice"),
            ("password", "pw"),
            ("next", "https://evil.example/"),
            ("csrfmiddlewaretoken", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&response),
        "/login/",
        "no open redirect: back to the login page"
    );
}

async fn failed_logins_are_throttled_then_recover(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    let token = flows::login_csrf_token(&browser, &server).await;
    let attempt = |password: &'static str| {
        let request = browser.post(server.url("/login/")).form(&[
            ("username", "alice"),
            ("password", password),
            ("csrfmiddlewaretoken", token.as_str()),
        ]);
        async move { request.send().await.unwrap() }
    };
    for _ in 0..5 {
        let response = attempt("wrong").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("Please enter a correct username and password"));
    }
    let locked = attempt("pw").await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    assert!(locked
        .text()
        .await
        .unwrap()
        .contains("Too many failed login attempts"));
    server.clock.advance(5 * 60);
    assert_eq!(
        attempt("pw").await.status(),
        StatusCode::FOUND,
        "recovers after the delay"
    );
}

async fn one_address_guessing_many_usernames_is_throttled(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    let token = flows::login_csrf_token(&browser, &server).await;
    let attempt = |username: String, password: &'static str| {
        let request = browser.post(server.url("/login/")).form(&[
            ("username", username.as_str()),
            ("password", password),
            ("csrfmiddlewaretoken", token.as_str()),
        ]);
        async move { request.send().await.unwrap().status() }
    };
    for n in 0..20 {
        assert_eq!(attempt(format!("guess{n}"), "x").await, StatusCode::OK);
    }
    assert_eq!(
        attempt("alice".into(), "pw").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked, whatever the username"
    );
}

async fn approval_redirects_with_an_encoded_code_and_state(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Query App", "alice")
            .identifier("query-app")
            .redirect_uri("https://q.example/cb?keep=1")
            .scopes(["polls:index"])
            .public(false),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let page = consent_page(
        &browser,
        &server,
        "client_id=app&response_type=code&state=x%26y%3Dz&scope=polls%3Avote",
    )
    .await;
    let target = location(&decide(&browser, &server, &page, true).await);
    assert!(
        target.starts_with("https://app.example/cb?code="),
        "{target}"
    );
    assert_eq!(query_param(&target, "state").as_deref(), Some("x&y=z"));
    assert!(query_param(&target, "code").unwrap().len() >= 43);

    let page = consent_page(
        &browser,
        &server,
        "client_id=query-app&response_type=code&state=s",
    )
    .await;
    let target = location(&decide(&browser, &server, &page, true).await);
    assert!(
        target.starts_with("https://q.example/cb?keep=1&code="),
        "keeps the query: {target}"
    );

    let page = consent_page(
        &browser,
        &server,
        "client_id=app&response_type=code&state=s",
    )
    .await;
    let target = location(&decide(&browser, &server, &page, false).await);
    assert_eq!(
        query_param(&target, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&target, "state").as_deref(), Some("s"));
    assert!(query_param(&target, "code").is_none());
}

async fn a_decision_is_used_once_and_bound_to_its_request(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Other App", "alice")
            .identifier("other")
            .redirect_uri("https://other.example/cb")
            .scopes(["polls:index"])
            .public(false),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let first_tab = consent_page(&browser, &server, "client_id=app&response_type=code").await;
    let second_tab = consent_page(&browser, &server, "client_id=other&response_type=code").await;
    let target = location(&decide(&browser, &server, &first_tab, true).await);
    assert!(
        target.starts_with(CB),
        "the first tab's code goes to its own client: {target}"
    );
    let again = decide(&browser, &server, &first_tab, true).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "approving twice");
    assert!(again.text().await.unwrap().contains("no longer waiting"));
    let target = location(&decide(&browser, &server, &second_tab, true).await);
    assert!(
        target.starts_with("https://other.example/cb?code="),
        "{target}"
    );

    // Another browser cannot use this one's consent form.
    let intruder = server.browser();
    log_in(&intruder, &server, "alice", "pw").await;
    let page = consent_page(&browser, &server, "client_id=app&response_type=code").await;
    let stolen = decide(&intruder, &server, &page, true).await;
    assert_eq!(
        stolen.status(),
        StatusCode::FORBIDDEN,
        "CSRF token of another session"
    );
}

async fn requests_without_a_trusted_redirect_uri_get_an_error_page(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Two URIs", "alice")
            .identifier("two")
            .redirect_uri("https://two.example/a")
            .redirect_uri("https://two.example/b")
            .public(false),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    for (query, message) in [
        ("response_type=code", "client_id is required"),
        ("client_id=nope&response_type=code", "Unknown client"),
        (
            "client_id=app&client_id=app&response_type=code",
            "must not be repeated",
        ),
        (
            "client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2F",
            "does not match",
        ),
        (
            "client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2Fx",
            "does not match",
        ),
        (
            "client_id=two&response_type=code",
            "several redirection endpoints",
        ),
    ] {
        let response = browser
            .get(server.url(&format!("/auth/?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(
            response.headers().get("location").is_none(),
            "never a redirect: {query}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{query}: {html}");
    }
    let ok = browser
        .get(server.url("/auth/?client_id=two&response_type=code&redirect_uri=https%3A%2F%2Ftwo.example%2Fb&scope=polls%3Aindex"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "an exact registered URI");
}

async fn other_errors_are_redirected_to_the_client(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Code only", "alice")
            .identifier("code-only")
            .redirect_uri("https://c.example/cb")
            .grant_types([GrantType::AuthorizationCode])
            .public(false),
    )
    .await;
    flows::client(
        server.store(),
        ClientRegistration::new("Public", "alice")
            .identifier("public")
            .redirect_uri("https://p.example/cb")
            .scopes(["polls:index"]),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    for (query, error, description) in [
        ("client_id=app&response_type=magic&state=s", "unsupported_response_type", "magic"),
        ("client_id=app&state=s", "invalid_request", "response_type is required"),
        ("client_id=app&response_type=code&scope=polls%3Astats&state=s", "invalid_scope", "polls:stats"),
        ("client_id=app&response_type=code&scope=polls%3Aindex&scope=x&state=s", "invalid_request", "repeated"),
        ("client_id=code-only&response_type=code&state=s", "invalid_scope", "Scope must be provided for this client"),
        ("client_id=code-only&response_type=token&state=s", "unauthorized_client", "implicit"),
        ("client_id=public&response_type=code&state=s", "invalid_request", "PKCE is required"),
        ("client_id=public&response_type=code&code_challenge=short&code_challenge_method=S256&state=s", "invalid_request", "code_challenge"),
        ("client_id=public&response_type=code&code_challenge_method=S256&state=s", "invalid_request", "without code_challenge"),
    ] {
        let response = browser.get(server.url(&format!("/auth/?{query}"))).send().await.unwrap();
        let target = location(&response);
        let target_params = if target.contains('#') {
            fragment_param
        } else {
            query_param
        };
        assert_eq!(target_params(&target, "error").as_deref(), Some(error), "{query} -> {target}");
        let got = target_params(&target, "error_description").unwrap();
        assert!(got.contains(description), "{query}: {got}");
        assert_eq!(target_params(&target, "state").as_deref(), Some("s"), "{query}");
    }
    // The unrestricted client names scopes; the restricted one gets its own when silent.
    let page = consent_page(&browser, &server, "client_id=app&response_type=code").await;
    assert!(page.contains("polls:index") && page.contains("polls:vote"));
    let public = consent_page(
        &browser,
        &server,
        &format!("client_id=public&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    )
    .await;
    assert!(public.contains("polls:index"));
}

async fn plain_pkce_can_be_switched_off(db: &TestDatabase) {
    let server = TestServer::start(
        db,
        Settings {
            pkce_plain: false,
            ..debug()
        },
    )
    .await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("Public", "alice")
            .identifier("public")
            .redirect_uri(CB)
            .scopes(["a"]),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let response = browser
        .get(server.url(&format!("/auth/?client_id=public&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain")))
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert!(
        query_param(&target, "error_description")
            .unwrap()
            .contains("use S256"),
        "{target}"
    );
}

async fn implicit_grant_puts_the_token_in_the_fragment(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let page = consent_page(
        &browser,
        &server,
        "client_id=app&response_type=token&state=s%20t&scope=polls%3Aindex",
    )
    .await;
    let target = location(&decide(&browser, &server, &page, true).await);
    assert!(target.starts_with("https://app.example/cb#"), "{target}");
    let token = fragment_param(&target, "access_token").unwrap();
    assert_eq!(
        fragment_param(&target, "token_type").as_deref(),
        Some("Bearer")
    );
    assert_eq!(
        fragment_param(&target, "expires_in").as_deref(),
        Some("3600")
    );
    assert_eq!(
        fragment_param(&target, "scope").as_deref(),
        Some("polls:index")
    );
    assert_eq!(fragment_param(&target, "state").as_deref(), Some("s t"));
    assert!(fragment_param(&target, "refresh_token").is_none());
    assert!(server
        .server
        .check_access_token(&token)
        .await
        .unwrap()
        .is_some());

    let off = TestServer::start(
        db,
        Settings {
            implicit_grant: false,
            ..debug()
        },
    )
    .await;
    let browser = off.browser();
    log_in(&browser, &off, "alice", "pw").await;
    let response = browser
        .get(off.url("/auth/?client_id=app&response_type=token"))
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert_eq!(
        fragment_param(&target, "error").as_deref(),
        Some("unsupported_response_type")
    );
}

async fn clients_without_hash_sign_support_get_a_proceed_page(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("No Hash", "alice")
            .identifier("nohash")
            .redirect_uri("https://nohash.example/cb")
            .scopes(["polls:index"])
            .hash_sign_supported(false)
            .public(false),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let page = consent_page(&browser, &server, "client_id=nohash&response_type=token").await;
    let response = decide(&browser, &server, &page, true).await;
    assert_eq!(response.status(), StatusCode::OK, "a page, not a redirect");
    // The link as the browser reads it, HTML entities decoded.
    let html = response
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(
        html.contains("href=\"https://nohash.example/cb#access_token="),
        "{html}"
    );
    assert!(html.contains("No Hash"));
}

async fn logout_ends_the_session(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let html = browser
        .get(server.url("/logout/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("alice"));
    let forged = browser
        .post(server.url("/logout/"))
        .form(&[("csrfmiddlewaretoken", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let response = browser
        .post(server.url("/logout/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf_token(&html).unwrap()),
            ("next", "//evil.example".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/login/");
    let auth = browser
        .get(server.url("/auth/?client_id=app&response_type=code"))
        .send()
        .await
        .unwrap();
    assert!(location(&auth).starts_with("/login/"), "logged out");
}

async fn templates_can_be_replaced(db: &TestDatabase) {
    let templates = oauthost::web::Templates::with_replacements([(
        "authorize",
        "<p>{{ client.title }} wants {% for s in scopes %}[{{ s.identifier }}]{% endfor %}</p>\
         <form method=post>{{ csrf_input }}<input type=\"hidden\" name=\"request_id\" value=\"{{ request_id }}\"></form>",
    )])
    .unwrap();
    let server = TestServer::start_with(db, debug(), templates).await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("<Polls>", "alice")
            .identifier("app")
            .redirect_uri(CB)
            .scopes(["polls:vote"])
            .public(false),
    )
    .await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let page = consent_page(&browser, &server, "client_id=app&response_type=code").await;
    assert!(
        page.starts_with("<p>&lt;Polls&gt; wants [polls:vote]</p>"),
        "escaped: {page}"
    );
    let target = location(&decide(&browser, &server, &page, true).await);
    assert!(target.starts_with(CB));
}

backend_tests!(
    plain_http_is_refused_outside_debug_mode,
    auth_sends_anonymous_users_to_login_and_back,
    login_refuses_forged_posts_and_foreign_next,
    failed_logins_are_throttled_then_recover,
    one_address_guessing_many_usernames_is_throttled,
    approval_redirects_with_an_encoded_code_and_state,
    a_decision_is_used_once_and_bound_to_its_request,
    requests_without_a_trusted_redirect_uri_get_an_error_page,
    other_errors_are_redirected_to_the_client,
    plain_pkce_can_be_switched_off,
    implicit_grant_puts_the_token_in_the_fragment,
    clients_without_hash_sign_support_get_a_proceed_page,
    logout_ends_the_session,
    templates_can_be_replaced,
);
