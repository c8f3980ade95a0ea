//! The flows driven by a real OAuth client library, the `oauth2` crate, instead of
//! hand-built requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauth2::{
    basic::BasicClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IntrospectionUrl, PkceCodeChallenge, RedirectUrl, Scope, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};
use oauthost::{server::Settings, toolbox::ClientRegistration};
use oauthost_testkit::{
    backend_tests,
    flows::{self, consent_page, decide, location, log_in, query_param},
    TestDatabase, TestServer,
};

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
        ClientRegistration::new("Mobile", "alice")
            .identifier("mobile")
            .redirect_uri("http://127.0.0.1/callback")
            .scopes(["polls:index", "polls:vote"]),
    )
    .await;
    flows::client(
        server.store(),
        ClientRegistration::new("Backend", "alice")
            .identifier("backend:app")
            .scopes(["polls:stats"])
            .public(false)
            .secret("a secret: with colon & more"),
    )
    .await;
    server
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn authorization_code_with_pkce(db: &TestDatabase) {
    let server = setup(db).await;
    let client = BasicClient::new(ClientId::new("mobile".into()))
        .set_auth_uri(AuthUrl::new(server.url("/auth/")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/token/")).unwrap())
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1/callback".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("polls:index".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = server.browser();
    log_in(&browser, &server, "alice", "pw").await;
    let page = consent_page(&browser, &server, url.query().unwrap()).await;
    let target = location(&decide(&browser, &server, &page, true).await);
    assert_eq!(
        query_param(&target, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = query_param(&target, "code").unwrap();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code is exchanged");
    assert_eq!(
        token.scopes().unwrap(),
        &vec![Scope::new("polls:index".into())]
    );
    assert!(token.refresh_token().is_some());
    let info = server
        .server
        .check_access_token(token.access_token().secret())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.username.as_deref(), Some("alice"));

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http())
        .await
        .expect("the refresh token is exchanged");
    assert_ne!(
        refreshed.access_token().secret(),
        token.access_token().secret()
    );
}

async fn client_credentials_and_introspection(db: &TestDatabase) {
    let server = setup(db).await;
    let client = BasicClient::new(ClientId::new("backend:app".into()))
        .set_client_secret(ClientSecret::new("a secret: with colon & more".into()))
        .set_token_uri(TokenUrl::new(server.url("/token/")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(server.url("/introspect/")).unwrap());
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("polls:stats".into()))
        .request_async(&http())
        .await
        .expect("client credentials with a form-encoded Basic secret");
    assert!(token.refresh_token().is_none());

    let introspection = client
        .introspect(token.access_token())
        .request_async(&http())
        .await
        .unwrap();
    assert!(introspection.active());
    assert_eq!(
        introspection.client_id().map(|c| c.as_str()),
        Some("backend:app")
    );

    // The oauth2 crate sends revocations over https only; revocation is covered by
    // tests/token.rs. Here: the same token, revoked, is no longer active.
    let info = server
        .server
        .check_access_token(token.access_token().secret())
        .await
        .unwrap()
        .unwrap();
    server.store().revoke_token(info.token.id).await.unwrap();
    let introspection = client
        .introspect(token.access_token())
        .request_async(&http())
        .await
        .unwrap();
    assert!(!introspection.active());
}

backend_tests!(
    authorization_code_with_pkce,
    client_credentials_and_introspection
);
