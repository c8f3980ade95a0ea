//! Several `oauthost serve` processes on one PostgreSQL database behave as one server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use oauthost_testkit::{csrf_token, flows, hidden_field, ServerProcess, TestDatabase};
use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_oauthost");

fn cli(db: &TestDatabase, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("--database-url")
        .arg(db.url())
        .args(args)
        .env_remove("OAUTHOST_DATABASE_URL")
        .env_remove("OAUTHOST_DEBUG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Asks `base` for a code for `app`, approves it, and returns the code.
async fn approved_code(browser: &reqwest::Client, base: &str) -> String {
    let consent = browser
        .get(format!(
            "{base}/auth/?client_id=app&response_type=code&scope=polls%3Aindex"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        consent.status(),
        StatusCode::OK,
        "the consent page, for the shared session"
    );
    let page = consent.text().await.unwrap();
    let approved = browser
        .post(format!("{base}/auth/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf_token(&page).unwrap()),
            ("request_id", hidden_field(&page, "request_id").unwrap()),
            ("auth_decision", "is_made".into()),
            ("confirmed", "yes".into()),
        ])
        .send()
        .await
        .unwrap();
    flows::query_param(&flows::location(&approved), "code").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_sessions_codes_and_revocations() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    cli(&db, &["migrate"]);
    cli(&db, &["user", "create", "alice", "--password", "pw"]);
    cli(&db, &["scope", "add", "polls:index"]);
    cli(
        &db,
        &[
            "client",
            "register",
            "--title",
            "App",
            "--id",
            "app",
            "--owner",
            "alice",
            "--redirect-uri",
            "https://app.example/cb",
            "--confidential",
            "--secret",
            "s3cret",
        ],
    );
    let start = || {
        ServerProcess::start(
            BIN,
            &[
                "--database-url",
                db.url(),
                "--debug",
                "serve",
                "--bind",
                "127.0.0.1:0",
                // The cache of validated tokens, with a time-to-live longer than the test:
                // only the change notifications can make a revocation seen at once, and
                // strictness makes sure they are read before a cached token is trusted.
                "--token-cache-ttl",
                "600",
                "--strict-revocation",
            ],
            &[],
        )
    };
    let (a, b, c) = (start(), start(), start());
    // Cookies are not scoped by port: the browser's session travels to every instance, as it
    // would behind one load balancer.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Log in on the first.
    let page = browser
        .get(format!("{}/login/", a.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login = browser
        .post(format!("{}/login/", a.base_url()))
        .form(&[
            ("username", "alice"),
            ("password", "pw"),
            ("csrfmiddlewaretoken", &csrf_token(&page).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);

    // Consent on the second.
    let code = approved_code(&browser, &b.base_url()).await;

    // Exchange the code on the third.
    let http = reqwest::Client::new();
    let issued: Value = http
        .post(format!("{}/token/", c.base_url()))
        .basic_auth("app", Some("s3cret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = issued["access_token"].as_str().unwrap().to_owned();
    let introspect = |base: String| {
        let http = http.clone();
        let access = access.clone();
        async move {
            let body: Value = http
                .post(format!("{base}/introspect/"))
                .basic_auth("app", Some("s3cret"))
                .form(&[("token", access.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["active"].as_bool().unwrap()
        }
    };
    assert!(
        introspect(a.base_url()).await,
        "the token, checked on the first"
    );
    // Checked on the third too, so that its cache holds the token.
    assert!(introspect(c.base_url()).await);
    assert!(introspect(c.base_url()).await);

    // Revoke on the second; refused on the third at once.
    let revoked = http
        .post(format!("{}/revoke/", b.base_url()))
        .basic_auth("app", Some("s3cret"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(
        !introspect(c.base_url()).await,
        "revoked everywhere at once"
    );

    // Fifty concurrent redemptions of one code spread over the three give one token.
    let code = approved_code(&browser, &a.base_url()).await;
    let bases = [a.base_url(), b.base_url(), c.base_url()];
    let attempts: Vec<_> = (0..50)
        .map(|n| {
            let (http, base, code) = (http.clone(), bases[n % 3].clone(), code.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/token/"))
                    .basic_auth("app", Some("s3cret"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut issued = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == StatusCode::OK {
            issued += 1;
        }
    }
    assert_eq!(issued, 1, "one code, one token, across instances");
}
