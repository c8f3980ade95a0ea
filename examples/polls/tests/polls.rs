//! The polls example end to end over a real socket, on SQLite and PostgreSQL: each view with
//! each token method, each refusal, scope naming, expiry and revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use oauthost::{server::Settings, toolbox::ClientRegistration};
use oauthost_testkit::{
    backend_tests,
    flows::{self, post_json, token},
    TestDatabase, TestServer,
};
use polls::Polls;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const ALL: &str = "polls:index polls:detail polls:results polls:vote my_polls:my_stats";

async fn start(db: &TestDatabase, settings: Settings) -> TestServer {
    let url = db.url().to_owned();
    let server = TestServer::start_app(db, settings, |oauthost| async move {
        let polls = Polls::connect(&url).await.unwrap();
        polls.migrate().await.unwrap();
        polls::router(oauthost, polls)
    })
    .await;
    oauthost::cli::syncscopes(server.store(), &["polls".to_owned()])
        .await
        .unwrap();
    flows::user(server.store(), "alice", "pw").await;
    flows::client(
        server.store(),
        ClientRegistration::new("Polls client", "alice")
            .identifier("app")
            .redirect_uri("https://app.example/cb")
            .token_lifetime(60)
            .public(false)
            .secret("s3cret"),
    )
    .await;
    server
}

async fn setup(db: &TestDatabase) -> TestServer {
    start(
        db,
        Settings {
            debug: true,
            ..Settings::default()
        },
    )
    .await
}

async fn access_token(server: &TestServer, scope: &str) -> String {
    let (status, body) = token(
        server,
        Some(("app", "s3cret")),
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "pw"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[derive(Clone, Copy, Debug)]
enum Way {
    Header,
    Body,
    Query,
}

/// Calls `path` with `token` sent `way`, and `form` in the body.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<(&str, Way)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut url = server.url(path);
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request_headers = Vec::new();
    match token {
        Some((token, Way::Header)) => request_headers.push(format!("Bearer {token}")),
        Some((token, Way::Query)) => url = format!("{url}?access_token={token}"),
        Some((token, Way::Body)) => form.push(("access_token", token)),
        None => {}
    }
    let mut request = reqwest::Client::new().request(method, url);
    for value in request_headers {
        request = request.header("authorization", value);
    }
    if !form.is_empty() {
        request = request.form(&form);
    }
    request.send().await.unwrap()
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    (response.status(), response.json().await.unwrap())
}

async fn every_view_answers_with_each_token_method(db: &TestDatabase) {
    let server = setup(db).await;
    let token = access_token(&server, ALL).await;
    for way in [Way::Header, Way::Query] {
        let t = Some((token.as_str(), way));
        let (status, index) = json(call(&server, Method::GET, "/polls/", t, &[]).await).await;
        assert_eq!(status, StatusCode::OK, "{way:?}");
        assert_eq!(index["user"], "alice");
        let ids: Vec<i64> = index["polls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);

        let (_, detail) = json(call(&server, Method::GET, "/polls/5/", t, &[]).await).await;
        assert_eq!(detail["user"], "alice");
        let choices: Vec<i64> = detail["poll"]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(choices, [13, 14, 15], "poll n has choices 3n-2, 3n-1, 3n");

        let (status, results) =
            json(call(&server, Method::GET, "/polls/1/results/", t, &[]).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(results["poll"]["results"][0]["choice_id"], 1);

        let (status, stats) =
            json(call(&server, Method::GET, "/polls/1/stats/", t, &[]).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stats["stats"]["choices"], 3);
    }
    for (n, way) in [Way::Header, Way::Body, Way::Query].into_iter().enumerate() {
        let (status, voted) = json(
            call(
                &server,
                Method::POST,
                "/polls/2/vote/",
                Some((&token, way)),
                &[("choice", "5")],
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{way:?}: {voted}");
        assert_eq!(voted["user"], "alice");
        assert_eq!(
            voted["poll"]["results"][1]["votes"],
            n as i64 + 1,
            "the updated results"
        );
    }
    let (_, stats) = json(
        call(
            &server,
            Method::GET,
            "/polls/2/stats/",
            Some((&token, Way::Header)),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(stats["stats"]["total_votes"], 3);
    assert_eq!(stats["stats"]["voters"], 1);
}

async fn refusals_follow_rfc_6750(db: &TestDatabase) {
    let server = setup(db).await;
    let token = access_token(&server, "polls:index").await;

    let missing = call(&server, Method::GET, "/polls/", None, &[]).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"oauthost\""
    );
    assert!(
        missing.headers().get("set-cookie").is_none(),
        "no session for API calls"
    );

    let invalid = call(
        &server,
        Method::GET,
        "/polls/",
        Some(("not-a-token", Way::Header)),
        &[],
    )
    .await;
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    let challenge = invalid.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        invalid.json::<Value>().await.unwrap()["error"],
        "invalid_token"
    );

    let lacking = call(
        &server,
        Method::GET,
        "/polls/1/stats/",
        Some((&token, Way::Header)),
        &[],
    )
    .await;
    assert_eq!(lacking.status(), StatusCode::FORBIDDEN);
    let challenge = lacking.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"my_polls:my_stats\""),
        "{challenge}"
    );
    assert!(lacking.headers().get("set-cookie").is_none());

    let twice = reqwest::Client::new()
        .get(server.url(&format!("/polls/?access_token={token}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        twice.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let get_body = reqwest::Client::new()
        .get(server.url("/polls/"))
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_body.status(),
        StatusCode::UNAUTHORIZED,
        "no body tokens with GET"
    );

    let browser = reqwest::Client::new()
        .get(server.url("/polls/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::UNAUTHORIZED);
    assert!(
        browser
            .text()
            .await
            .unwrap()
            .contains("This resource requires an access token"),
        "the restricted page"
    );

    let lowercase = reqwest::Client::new()
        .get(server.url("/polls/"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lowercase.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
}

async fn scopes_are_named_after_app_and_handler(db: &TestDatabase) {
    let server = setup(db).await;
    for (scope, path) in [
        ("polls:index", "/polls/"),
        ("polls:detail", "/polls/1/"),
        ("polls:results", "/polls/1/results/"),
        ("my_polls:my_stats", "/polls/1/stats/"),
    ] {
        let token = access_token(&server, scope).await;
        let ok = call(&server, Method::GET, path, Some((&token, Way::Header)), &[]).await;
        assert_eq!(ok.status(), StatusCode::OK, "{scope} opens {path}");
        for (_, other) in [
            ("", "/polls/"),
            ("", "/polls/1/"),
            ("", "/polls/1/results/"),
            ("", "/polls/1/stats/"),
        ] {
            if other != path {
                let refused = call(
                    &server,
                    Method::GET,
                    other,
                    Some((&token, Way::Header)),
                    &[],
                )
                .await;
                assert_eq!(
                    refused.status(),
                    StatusCode::FORBIDDEN,
                    "{scope} does not open {other}"
                );
            }
        }
    }
}

async fn votes_are_checked_after_the_token(db: &TestDatabase) {
    let server = setup(db).await;
    let token = access_token(&server, "polls:vote").await;
    let t = Some((token.as_str(), Way::Header));
    let (status, body) = json(
        call(
            &server,
            Method::POST,
            "/polls/1/vote/",
            t,
            &[("choice", "4")],
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a choice of another poll: {body}"
    );
    let (status, _) = json(
        call(
            &server,
            Method::POST,
            "/polls/1/vote/",
            t,
            &[("other", "x")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no choice");
    let (status, _) = json(
        call(
            &server,
            Method::POST,
            "/polls/1/vote/",
            t,
            &[("choice", "one")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json(
        call(
            &server,
            Method::POST,
            "/polls/99/vote/",
            t,
            &[("choice", "1")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let anonymous = call(
        &server,
        Method::POST,
        "/polls/99/vote/",
        None,
        &[("choice", "1")],
    )
    .await;
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "no token learns nothing of the poll"
    );
    let (status, results) = json(
        call(
            &server,
            Method::GET,
            "/polls/1/results/",
            Some((&access_token(&server, "polls:results").await, Way::Header)),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        results["poll"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["votes"] == 0),
        "nothing recorded"
    );
}

async fn tokens_stop_working_when_expired_revoked_or_their_user_leaves(db: &TestDatabase) {
    let server = setup(db).await;
    let token = access_token(&server, "polls:index").await;
    let index = |token: String| {
        let server = &server;
        async move {
            call(
                server,
                Method::GET,
                "/polls/",
                Some((&token, Way::Header)),
                &[],
            )
            .await
            .status()
        }
    };
    server.clock.advance(59);
    assert_eq!(index(token.clone()).await, StatusCode::OK);
    server.clock.advance(1);
    assert_eq!(
        index(token).await,
        StatusCode::UNAUTHORIZED,
        "the client's 60-second lifetime"
    );

    let token = access_token(&server, "polls:index").await;
    let (status, _) = post_json(
        &server,
        "/revoke/",
        Some(("app", "s3cret")),
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        index(token).await,
        StatusCode::UNAUTHORIZED,
        "revocation takes effect at once"
    );

    let token = access_token(&server, "polls:index").await;
    let alice = server.store().find_user("alice").await.unwrap().unwrap();
    server
        .store()
        .set_user_active(alice.id, false)
        .await
        .unwrap();
    assert_eq!(
        index(token).await,
        StatusCode::UNAUTHORIZED,
        "an inactive user's token"
    );
}

async fn query_tokens_can_be_switched_off(db: &TestDatabase) {
    let server = start(
        db,
        Settings {
            debug: true,
            query_tokens: false,
            ..Settings::default()
        },
    )
    .await;
    let token = access_token(&server, "polls:index").await;
    let (status, body) = json(
        call(
            &server,
            Method::GET,
            "/polls/",
            Some((&token, Way::Query)),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("query string"));
    let ok = call(
        &server,
        Method::GET,
        "/polls/",
        Some((&token, Way::Header)),
        &[],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn migrate_seeds_once(db: &TestDatabase) {
    let store = oauthost::store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let polls = Polls::connect(db.url()).await.unwrap();
    assert_eq!(
        polls.migrate().await.unwrap(),
        ["Polls: created the tables and seeded 5 sample polls."]
    );
    polls.vote(1, 2, "alice", 0).await.unwrap().unwrap();
    assert_eq!(
        polls.migrate().await.unwrap(),
        ["Polls: the tables are up to date."]
    );
    let results = polls.results(1).await.unwrap().unwrap();
    assert_eq!(
        results["results"][1]["votes"], 1,
        "a second migrate changes nothing"
    );
    let list: serde_json::Value = serde_json::from_str(polls.list().await.unwrap().get()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
}

backend_tests!(
    every_view_answers_with_each_token_method,
    refusals_follow_rfc_6750,
    scopes_are_named_after_app_and_handler,
    votes_are_checked_after_the_token,
    tokens_stop_working_when_expired_revoked_or_their_user_leaves,
    query_tokens_can_be_switched_off,
    migrate_seeds_once,
);
