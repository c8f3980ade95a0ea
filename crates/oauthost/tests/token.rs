//! `/token/`, `/revoke/`, `/introspect/` and the metadata, over a real socket, on SQLite
//! and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;

use oauthost::{server::Settings, store::NewUser, toolbox::ClientRegistration};
use oauthost_core::{client::GrantType, clock::Clock};
use oauthost_testkit::{
    backend_tests,
    flows::{self, log_in, post_json, token},
    TestDatabase, TestServer,
};
use reqwest::StatusCode;
use serde_json::Value;

const CB: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const APP: Option<(&str, &str)> = Some(("app", "s3cret"));

/// A debug-mode server with user alice, the confidential client `app` (secret `s3cret`,
/// scopes polls:index and polls:vote, 60-second tokens) and the public client `mobile`.
async fn setup(db: &TestDatabase) -> TestServer {
    let server = TestServer::start(
        db,
        Settings {
            debug: true,
            ..Settings::default()
        },
    )
    .await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("Polls App", "alice")
            .identifier("app")
            .redirect_uri(CB)
            .scopes(["polls:index", "polls:vote"])
            .token_lifetime(60)
            .public(false)
            .secret("s3cret"),
    )
    .await;
    flows::client(
        server.store(),
        ClientRegistration::new("Mobile", "alice")
            .identifier("mobile")
            .redirect_uri("http://127.0.0.1/cb")
            .scopes(["polls:index"]),
    )
    .await;
    server
}

async fn code_for_app(server: &TestServer) -> String {
    let browser = server.browser();
    log_in(&browser, server, "alice", "pw").await;
    flows::code(
        &browser,
        server,
        "client_id=app&response_type=code&scope=polls%3Aindex+polls%3Avote",
    )
    .await
}

async fn introspect(server: &TestServer, value: &str) -> Value {
    let (status, body) = post_json(server, "/introspect/", APP, &[("token", value)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A token for alice through the password grant, as `app`: the JSON answer.
async fn alice_token(server: &TestServer, scope: &str) -> Value {
    let (status, body) = token(
        server,
        APP,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "pw"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_error(result: &(StatusCode, Value), status: StatusCode, error: &str, description: &str) {
    let (got_status, body) = result;
    assert_eq!(*got_status, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    let got = body["error_description"].as_str().unwrap();
    assert!(
        got.contains(description),
        "{got:?} should contain {description:?}"
    );
}

async fn authorization_code_is_exchanged_once(db: &TestDatabase) {
    let server = setup(db).await;
    let code = code_for_app(&server).await;
    let response = reqwest::Client::new()
        .post(server.url("/token/"))
        .basic_auth("app", Some("s3cret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["scope"], "polls:index polls:vote");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(access.len() >= 43 && body["refresh_token"].as_str().unwrap().len() >= 43);
    let info = introspect(&server, &access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], "app");

    let replay = token(
        &server,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_error(
        &replay,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "already been used",
    );
    assert_eq!(
        introspect(&server, &access).await["active"],
        false,
        "tokens of a replayed code are revoked"
    );
}

async fn code_exchange_checks_everything(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Other", "alice")
            .identifier("other")
            .redirect_uri(CB)
            .public(false)
            .secret("o"),
    )
    .await;
    let exchange =
        |code: String, redirect: &'static str, basic: Option<(&'static str, &'static str)>| {
            let server = &server;
            async move {
                token(
                    server,
                    basic,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", redirect),
                    ],
                )
                .await
            }
        };
    let wrong_uri = exchange(
        code_for_app(&server).await,
        "https://app.example/other",
        APP,
    )
    .await;
    assert_error(
        &wrong_uri,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "redirect_uri",
    );
    let code = code_for_app(&server).await;
    let other_client = exchange(code.clone(), CB, Some(("other", "o"))).await;
    assert_error(
        &other_client,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "Invalid authorization code",
    );
    assert_eq!(
        exchange(code, CB, APP).await.0,
        StatusCode::OK,
        "another client cannot burn the code"
    );
    let code = code_for_app(&server).await;
    server.clock.advance(601);
    assert_error(
        &exchange(code, CB, APP).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "expired",
    );
    assert_error(
        &exchange("made-up".into(), CB, APP).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "Invalid authorization code",
    );
    let missing = token(
        &server,
        APP,
        &[("grant_type", "authorization_code"), ("redirect_uri", CB)],
    )
    .await;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "'code' is required",
    );
    // redirect_uri is required at /token/ when, and only when, /auth/ was given one.
    let implicit_uri = code_for_app(&server).await;
    let ok = token(
        &server,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &implicit_uri),
        ],
    )
    .await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let explicit = flows::code(
        &browser,
        &server,
        "client_id=app&response_type=code&scope=polls%3Aindex&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
    )
    .await;
    let no_uri = token(
        &server,
        APP,
        &[("grant_type", "authorization_code"), ("code", &explicit)],
    )
    .await;
    assert_error(
        &no_uri,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "'redirect_uri' is required",
    );
}

async fn pkce_verifiers_are_checked(db: &TestDatabase) {
    let server = setup(db).await;
    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let pkce_query = format!(
        "client_id=mobile&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let exchange = |code: String, verifier: Option<&'static str>| {
        let server = &server;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("client_id", "mobile"),
                ("code", code.as_str()),
                ("redirect_uri", "http://127.0.0.1/cb"),
            ];
            if let Some(verifier) = verifier {
                form.push(("code_verifier", verifier));
            }
            token(server, None, &form).await
        }
    };
    let missing = exchange(flows::code(&browser, &server, &pkce_query).await, None).await;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "code_verifier is required",
    );
    let wrong = exchange(
        flows::code(&browser, &server, &pkce_query).await,
        Some("x".repeat(43).leak()),
    )
    .await;
    assert_error(
        &wrong,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "does not match",
    );
    let right = exchange(
        flows::code(&browser, &server, &pkce_query).await,
        Some(VERIFIER),
    )
    .await;
    assert_eq!(right.0, StatusCode::OK, "{}", right.1);

    // A verifier for a code that had no challenge.
    let code = code_for_app(&server).await;
    let unexpected = token(
        &server,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_error(
        &unexpected,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "no code_challenge",
    );
}

async fn client_authentication_is_strict(db: &TestDatabase) {
    let server = setup(db).await;
    let form = [("grant_type", "client_credentials")];
    let wrong = reqwest::Client::new()
        .post(server.url("/token/"))
        .basic_auth("app", Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"oauthost\""
    );
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let body_auth = token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_error(
        &body_auth,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed",
    );
    let unknown = token(&server, Some(("ghost", "x")), &form).await;
    assert_eq!(
        unknown.1, body_auth.1,
        "an unknown client looks like a wrong secret"
    );
    let both = token(
        &server,
        APP,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "s3cret"),
        ],
    )
    .await;
    assert_error(
        &both,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "not both",
    );
    let missing_secret = token(
        &server,
        None,
        &[("grant_type", "client_credentials"), ("client_id", "app")],
    )
    .await;
    assert_error(
        &missing_secret,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "failed",
    );
    let in_query = reqwest::Client::new()
        .post(server.url("/token/?client_secret=s3cret"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "app")])
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), StatusCode::BAD_REQUEST);
    for malformed in ["Basic", "Basic %%%", "Basic bm9jb2xvbg=="] {
        let response = reqwest::Client::new()
            .post(server.url("/token/"))
            .header("authorization", malformed)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{malformed}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    let ok = token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
        ],
    )
    .await;
    assert_eq!(ok.0, StatusCode::OK, "secret in the body");
}

async fn grant_types_are_checked(db: &TestDatabase) {
    let server = setup(db).await;
    flows::client(
        server.store(),
        ClientRegistration::new("Codes only", "alice")
            .identifier("codes")
            .redirect_uri(CB)
            .public(false)
            .secret("c")
            .grant_types([GrantType::AuthorizationCode]),
    )
    .await;
    assert_error(
        &token(&server, APP, &[]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "grant_type",
    );
    assert_error(
        &token(&server, APP, &[("grant_type", "magic")]).await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "magic",
    );
    assert_error(
        &token(
            &server,
            Some(("codes", "c")),
            &[("grant_type", "client_credentials")],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "client_credentials",
    );
    assert_error(
        &token(
            &server,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "mobile"),
            ],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "confidential",
    );
    let get = reqwest::get(server.url("/token/")).await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn client_credentials_act_as_the_registrant_without_refresh(db: &TestDatabase) {
    let server = setup(db).await;
    let (status, body) = token(
        &server,
        APP,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "polls:vote"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "polls:vote");
    let info = introspect(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["username"], "alice", "the registrant, as in the seed");
    let wide = token(
        &server,
        APP,
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_error(&wide, StatusCode::BAD_REQUEST, "invalid_scope", "admin");
}

async fn password_grant_gives_one_answer_to_every_bad_login(db: &TestDatabase) {
    let server = setup(db).await;
    server
        .store()
        .create_user(
            NewUser {
                username: "gone".into(),
                password_hash: Some(oauthost_core::password::hash("pw").unwrap()),
                is_staff: false,
                is_active: false,
            },
            server.clock.now(),
        )
        .await
        .unwrap();
    let login = |username: &'static str, password: &'static str| {
        let server = &server;
        async move {
            token(
                server,
                APP,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await
        }
    };
    let ok = login("alice", "pw").await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert!(ok.1["refresh_token"].is_string());
    let wrong = login("alice", "nope").await;
    assert_error(
        &wrong,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "Invalid username or password",
    );
    assert_eq!(login("nobody", "pw").await, wrong);
    assert_eq!(login("gone", "pw").await, wrong, "inactive");

    // The login page's throttle covers the password grant too: alice has failed once.
    for _ in 0..4 {
        login("alice", "nope").await;
    }
    let locked = login("alice", "pw").await;
    assert_error(
        &locked,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "Too many failed login attempts",
    );
    server.clock.advance(5 * 60);
    assert_eq!(
        login("alice", "pw").await.0,
        StatusCode::OK,
        "recovers after the delay"
    );

    let off = TestServer::start(
        db,
        Settings {
            debug: true,
            password_grant: false,
            ..Settings::default()
        },
    )
    .await;
    let refused = token(
        &off,
        APP,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "pw"),
        ],
    )
    .await;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "password",
    );
}

async fn refresh_tokens_rotate_and_replays_revoke_the_family(db: &TestDatabase) {
    let server = setup(db).await;
    let first = token(
        &server,
        APP,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "pw"),
            ("scope", "polls:index polls:vote"),
        ],
    )
    .await
    .1;
    let refresh = |value: String, scope: Option<&'static str>| {
        let server = &server;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", value.as_str()),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope));
            }
            token(server, APP, &form).await
        }
    };
    server.clock.advance(50);
    let (status, second) = refresh(
        first["refresh_token"].as_str().unwrap().into(),
        Some("polls:index"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["scope"], "polls:index", "narrower scope");
    assert_eq!(second["expires_in"], 60);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let second_access = second["access_token"].as_str().unwrap();
    let info = introspect(&server, second_access).await;
    assert_eq!(
        info["exp"].as_i64().unwrap(),
        server.clock.now().unix_timestamp() + 60,
        "a fresh expiry"
    );

    let wider = refresh(
        second["refresh_token"].as_str().unwrap().into(),
        Some("polls:vote"),
    )
    .await;
    assert_error(&wider, StatusCode::BAD_REQUEST, "invalid_scope", "exceeds");
    let other = token(
        &server,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "mobile"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_error(
        &other,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "another client",
    );

    let replay = refresh(first["refresh_token"].as_str().unwrap().into(), None).await;
    assert_error(
        &replay,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "already been used",
    );
    assert_eq!(
        introspect(&server, second_access).await["active"],
        false,
        "the family is revoked"
    );
    let after = refresh(second["refresh_token"].as_str().unwrap().into(), None).await;
    assert_error(&after, StatusCode::BAD_REQUEST, "invalid_grant", "revoked");
}

async fn an_inactive_users_refresh_token_is_refused_and_kept(db: &TestDatabase) {
    let server = setup(db).await;
    let issued = alice_token(&server, "polls:index").await;
    let refresh = issued["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let alice = server.store().find_user("alice").await.unwrap().unwrap();
    assert!(server
        .store()
        .set_user_active(alice.id, false)
        .await
        .unwrap());
    let refused = token(&server, APP, &form).await;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "inactive",
    );

    // Not rotated: once the user is active again, the same refresh token works, once.
    assert!(server
        .store()
        .set_user_active(alice.id, true)
        .await
        .unwrap());
    let (status, rotated) = token(&server, APP, &form).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["refresh_token"], issued["refresh_token"]);
    let replay = token(&server, APP, &form).await;
    assert_error(
        &replay,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "already been used",
    );
}

async fn concurrent_exchanges_issue_exactly_one_token(db: &TestDatabase) {
    let server = Arc::new(setup(db).await);
    let code = code_for_app(&server).await;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let (server, code) = (server.clone(), code.clone());
            tokio::spawn(async move {
                token(
                    &server,
                    APP,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", CB),
                    ],
                )
                .await
                .0
            })
        })
        .collect();
    let mut successes = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == StatusCode::OK {
            successes += 1;
        }
    }
    assert_eq!(successes, 1, "one code, one token");

    let first = alice_token(&server, "polls:index").await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let (server, refresh) = (server.clone(), refresh.clone());
            tokio::spawn(async move {
                token(
                    &server,
                    APP,
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
                .await
                .0
            })
        })
        .collect();
    let mut successes = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == StatusCode::OK {
            successes += 1;
        }
    }
    assert_eq!(successes, 1, "one refresh token, one rotation");
}

async fn malformed_bodies_get_json_errors(db: &TestDatabase) {
    let server = setup(db).await;
    let client = reqwest::Client::new();
    let json = client
        .post(server.url("/token/"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    assert!(json.json::<Value>().await.unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("Content-Type"));
    let huge = client
        .post(server.url("/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={}",
            "x".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        huge.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    for body in [
        "grant_type=%FF%FE",
        "grant_type=password&grant_type=password",
        "client_id=mob%00ile",
    ] {
        let response = client
            .post(server.url("/token/"))
            .basic_auth("app", Some("s3cret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_request",
            "{body}"
        );
    }
}

async fn revocation_takes_effect_at_once(db: &TestDatabase) {
    let server = setup(db).await;
    let issued = alice_token(&server, "polls:index").await;
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(introspect(&server, access).await["active"], true);
    let (status, body) = post_json(&server, "/revoke/", APP, &[("token", access)]).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(introspect(&server, access).await["active"], false);
    assert!(server
        .server
        .check_access_token(access)
        .await
        .unwrap()
        .is_none());

    // Revoking a refresh token ends its family.
    let issued = alice_token(&server, "polls:index").await;
    let refresh = issued["refresh_token"].as_str().unwrap();
    let (status, _) = post_json(
        &server,
        "/revoke/",
        APP,
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        introspect(&server, issued["access_token"].as_str().unwrap()).await["active"],
        false
    );

    let (status, _) = post_json(&server, "/revoke/", APP, &[("token", "unknown")]).await;
    assert_eq!(status, StatusCode::OK, "unknown tokens are not an error");
    let mobile = token(
        &server,
        None,
        &[
            ("grant_type", "password"),
            ("client_id", "mobile"),
            ("username", "alice"),
            ("password", "pw"),
            ("scope", "polls:index"),
        ],
    )
    .await
    .1;
    let foreign = post_json(
        &server,
        "/revoke/",
        APP,
        &[("token", mobile["access_token"].as_str().unwrap())],
    )
    .await;
    assert_error(
        &foreign,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "another client",
    );
    assert_eq!(
        introspect(&server, mobile["access_token"].as_str().unwrap()).await["active"],
        true
    );
    let issued = token(&server, APP, &[("grant_type", "client_credentials")])
        .await
        .1;
    let access = issued["access_token"].as_str().unwrap();
    let (status, _) = post_json(
        &server,
        "/revoke/",
        APP,
        &[("token", access), ("token_type_hint", "id_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an unknown hint is ignored");
    assert_eq!(introspect(&server, access).await["active"], false);
    let anonymous = post_json(&server, "/revoke/", None, &[("token", "x")]).await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED);
}

async fn introspection_is_for_confidential_clients_and_follows_expiry(db: &TestDatabase) {
    let server = setup(db).await;
    let issued = token(
        &server,
        APP,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "polls:index"),
        ],
    )
    .await
    .1;
    let access = issued["access_token"].as_str().unwrap();
    let info = introspect(&server, access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "polls:index");
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap() == 60);
    let public = post_json(
        &server,
        "/introspect/",
        None,
        &[("client_id", "mobile"), ("token", access)],
    )
    .await;
    assert_error(
        &public,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "confidential",
    );
    server.clock.advance(60);
    assert_eq!(
        introspect(&server, access).await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(
        introspect(&server, "garbage").await,
        serde_json::json!({ "active": false })
    );
}

async fn metadata_describes_the_server(db: &TestDatabase) {
    let server = setup(db).await;
    let body: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = server.url("");
    assert_eq!(body["issuer"], base);
    assert_eq!(body["authorization_endpoint"], format!("{base}/auth/"));
    assert_eq!(body["token_endpoint"], format!("{base}/token/"));
    assert_eq!(body["revocation_endpoint"], format!("{base}/revoke/"));
    assert_eq!(
        body["introspection_endpoint"],
        format!("{base}/introspect/")
    );
    assert_eq!(
        body["scopes_supported"],
        serde_json::json!(["polls:index", "polls:vote"])
    );
    assert_eq!(
        body["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    assert!(body["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&"password".into()));
    assert!(body["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"client_secret_basic".into()));
}

async fn the_router_can_be_mounted_under_a_prefix(db: &TestDatabase) {
    let server = TestServer::start(
        db,
        Settings {
            debug: true,
            mount_path: "/oauth".into(),
            ..Settings::default()
        },
    )
    .await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("App", "alice")
            .identifier("app")
            .redirect_uri(CB)
            .scopes(["a"])
            .public(false)
            .secret("s3cret"),
    )
    .await;
    let response = server
        .browser()
        .get(server.url("/oauth/auth/?client_id=app&response_type=code"))
        .send()
        .await
        .unwrap();
    assert!(flows::location(&response).starts_with("/oauth/login/?next=%2Foauth%2Fauth%2F"));
    let (status, _) = post_json(
        &server,
        "/oauth/token/",
        APP,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server/oauth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["token_endpoint"], server.url("/oauth/token/"));
}

backend_tests!(
    authorization_code_is_exchanged_once,
    code_exchange_checks_everything,
    pkce_verifiers_are_checked,
    client_authentication_is_strict,
    grant_types_are_checked,
    client_credentials_act_as_the_registrant_without_refresh,
    password_grant_gives_one_answer_to_every_bad_login,
    refresh_tokens_rotate_and_replays_revoke_the_family,
    an_inactive_users_refresh_token_is_refused_and_kept,
    concurrent_exchanges_issue_exactly_one_token,
    malformed_bodies_get_json_errors,
    revocation_takes_effect_at_once,
    introspection_is_for_confidential_clients_and_follows_expiry,
    metadata_describes_the_server,
    the_router_can_be_mounted_under_a_prefix,
);
