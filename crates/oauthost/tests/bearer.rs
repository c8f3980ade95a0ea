//! `#[oauth_required]`, the bearer extractors and the protecting layer, in an app of this
//! test's own, over a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use axum::{
    extract::{FromRef, State},
    routing::get,
    Json, Router,
};
use oauthost::{
    oauth_required,
    server::{Oauthost, Settings},
    toolbox::ClientRegistration,
    web::bearer::{Authorized, DeclaredApp},
};
use oauthost_testkit::{backend_tests, flows, TestDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

oauthost::__private::inventory::submit! { DeclaredApp { name: "empty_app" } }

#[derive(Clone)]
struct AppState {
    oauthost: Oauthost,
}

impl FromRef<AppState> for Oauthost {
    fn from_ref(state: &AppState) -> Self {
        state.oauthost.clone()
    }
}

/// Any valid token; the handler reads who it is.
#[oauth_required]
async fn whoami(user: Authorized) -> Json<Value> {
    Json(json!({
        "user": user.username(),
        "client": user.client_id(),
        "scopes": user.scopes().to_string(),
    }))
}

/// `scope_auto` with the app named by hand: `blog:entries`.
#[oauth_required(scope_auto, app = "blog")]
async fn entries(State(_): State<AppState>) -> &'static str {
    "entries"
}

/// `scope_auto` in this crate: `bearer:drafts`.
#[oauth_required(scope_auto)]
pub async fn drafts() -> &'static str {
    "drafts"
}

async fn start(db: &TestDatabase) -> TestServer {
    let server = TestServer::start_app(
        db,
        Settings {
            debug: true,
            ..Settings::default()
        },
        |oauthost| async move {
            let admin = Router::new()
                .route("/stats", get(|| async { "stats" }))
                .layer(oauthost.protect("admin:stats"));
            let anyone = Router::new()
                .route(
                    "/ping",
                    get(|user: Authorized| async move {
                        format!("pong {}", user.username().unwrap_or("-"))
                    }),
                )
                .layer(oauthost.protect_any());
            Router::new()
                .route("/whoami", get(whoami))
                .route("/entries", get(entries))
                .route("/drafts", get(drafts))
                .nest("/admin", admin)
                .nest("/any", anyone)
                .with_state(AppState { oauthost })
        },
    )
    .await;
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("App", "alice")
            .identifier("app")
            .scopes([
                "blog:entries",
                "bearer:drafts",
                "admin:stats",
                "other:thing",
            ])
            .public(false)
            .secret("s3cret"),
    )
    .await;
    server
}

async fn token_for(server: &TestServer, scope: &str) -> String {
    let (status, body) = flows::token(
        server,
        Some(("app", "s3cret")),
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get_with(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn handlers_see_the_token_and_require_their_scope(db: &TestDatabase) {
    let server = start(db).await;
    let token = token_for(&server, "other:thing").await;
    let whoami: Value = get_with(&server, "/whoami", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        whoami,
        json!({ "user": "alice", "client": "app", "scopes": "other:thing" })
    );
    let own_params = server.url(&format!("/whoami?q={}&r=%FF", "x".repeat(5000)));
    let response = reqwest::Client::new()
        .get(own_params)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the app's own parameters are not oauthost's business"
    );
    assert_eq!(
        reqwest::get(server.url("/whoami")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        get_with(&server, "/entries", &token).await.status(),
        StatusCode::FORBIDDEN
    );
    let blog = token_for(&server, "blog:entries").await;
    assert_eq!(
        get_with(&server, "/entries", &blog).await.status(),
        StatusCode::OK,
        "app = \"blog\""
    );
    let drafts = token_for(&server, "bearer:drafts").await;
    assert_eq!(
        get_with(&server, "/drafts", &drafts).await.status(),
        StatusCode::OK,
        "the crate's name"
    );
    assert_eq!(
        get_with(&server, "/drafts", &blog).await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn a_layer_protects_a_whole_nest(db: &TestDatabase) {
    let server = start(db).await;
    let stats = token_for(&server, "admin:stats").await;
    let other = token_for(&server, "other:thing").await;
    assert_eq!(
        get_with(&server, "/admin/stats", &stats)
            .await
            .text()
            .await
            .unwrap(),
        "stats"
    );
    let refused = get_with(&server, "/admin/stats", &other).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"admin:stats\""));
    assert_eq!(
        reqwest::get(server.url("/admin/stats"))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&server, "/any/ping", &other)
            .await
            .text()
            .await
            .unwrap(),
        "pong alice"
    );
    assert_eq!(
        get_with(&server, "/any/ping", "forged").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn syncscopes_knows_this_binarys_apps(db: &TestDatabase) {
    let server = start(db).await;
    let report = oauthost::cli::syncscopes(
        server.store(),
        &["blog".into(), "bearer".into(), "empty_app".into()],
    )
    .await
    .unwrap();
    assert_eq!(
        report,
        [
            "Scope blog:entries exists; skipped.",
            "Scope bearer:drafts exists; skipped.",
            "App \"empty_app\" has no protected handlers with a scope.",
        ]
    );
    let unknown = oauthost::cli::syncscopes(server.store(), &["bearer".into(), "nope".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown app \"nope\""), "{unknown}");
    assert!(unknown.contains("bearer, blog, empty_app"), "{unknown}");
}

backend_tests!(
    handlers_see_the_token_and_require_their_scope,
    a_layer_protects_a_whole_nest,
    syncscopes_knows_this_binarys_apps,
);
