//! The `oauthost` command line, run as a real process on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use oauthost_testkit::{backend_tests, ServerProcess, TestBackend, TestDatabase};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_oauthost");

fn command(db_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .env_remove("OAUTHOST_DATABASE_URL")
        .env_remove("OAUTHOST_DEBUG")
        .stdin(Stdio::null());
    command
}

fn run(db: &TestDatabase, args: &[&str]) -> Output {
    command(db.url(), args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Runs a command that must succeed and returns its standard output.
fn ok(db: &TestDatabase, args: &[&str]) -> String {
    let output = run(db, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// Runs a command that must fail with a one-line `error: ...` and returns that line.
fn fails(db: &TestDatabase, args: &[&str]) -> String {
    let output = run(db, args);
    assert!(
        !output.status.success(),
        "{args:?} succeeded: {}",
        stdout(&output)
    );
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
    assert!(message.starts_with("error: "), "{message}");
    message
}

/// Everything the listings show, to check that a failed command changed nothing.
fn listings(db: &TestDatabase) -> String {
    ["user", "scope", "client"]
        .iter()
        .map(|what| ok(db, &[what, "list"]))
        .collect()
}

async fn migrate_says_what_it_applied_and_is_idempotent(db: &TestDatabase) {
    assert_eq!(
        ok(db, &["migrate"]),
        "Applied migration 1: initial\nApplied migration 2: change notifications\nApplied migration 3: admin indexes\nApplied migration 4: scope change notifications\nApplied migration 5: partial token indexes\nApplied migration 6: token reference checks\n"
    );
    assert_eq!(
        ok(db, &["migrate"]),
        "No migrations to apply: the database schema is up to date.\n"
    );
    assert_eq!(
        ok(db, &["purge", "--batch-size", "10"]),
        "Purged 0 codes, 0 tokens, 0 sessions and 0 login counters.\n"
    );
}

async fn the_seed_quick_start_from_the_command_line(db: &TestDatabase) {
    ok(db, &["migrate"]);
    assert_eq!(
        ok(
            db,
            &["user", "create", "alice", "--password", "pw", "--staff"]
        ),
        "Created staff user \"alice\".\n"
    );
    assert_eq!(
        ok(db, &["scope", "add", "polls:index"]),
        "Created scope polls:index (\"Polls Index\", enabled).\n"
    );
    ok(
        db,
        &[
            "scope",
            "add",
            "polls:detail",
            "--title",
            "Poll details",
            "--disabled",
        ],
    );

    let public: Value = serde_json::from_str(&ok(
        db,
        &[
            "client",
            "register",
            "--title",
            "My OAuth Client",
            "--id",
            "1234",
            "--redirect-uri",
            "https://myapp.com/",
            "--owner",
            "alice",
            "--scope",
            "polls:vote",
            "--scope",
            "polls:stats",
        ],
    ))
    .unwrap();
    assert_eq!(public["client_id"], "1234");
    assert_eq!(public["client_type"], "public");
    assert!(public.get("client_secret").is_none());
    assert_eq!(
        public["scopes"],
        serde_json::json!(["polls:vote", "polls:stats"])
    );

    let confidential: Value = serde_json::from_str(&ok(
        db,
        &[
            "client",
            "register",
            "--title",
            "Backend",
            "--owner",
            "alice",
            "--confidential",
            "--token-lifetime",
            "60",
            "--no-fragment",
            "--grant-type",
            "client_credentials",
        ],
    ))
    .unwrap();
    let client_id = confidential["client_id"].as_str().unwrap();
    let secret = confidential["client_secret"].as_str().unwrap();
    assert!(client_id.len() >= 32, "{client_id}");
    assert!(secret.len() >= 43, "{secret}");
    assert_eq!(confidential["token_lifetime"], 60);
    assert_eq!(confidential["hash_sign_supported"], false);
    assert_eq!(
        confidential["grant_types"],
        serde_json::json!(["client_credentials"])
    );

    let clients = ok(db, &["client", "list"]);
    assert!(clients.contains("My OAuth Client  1234"), "{clients}");
    assert!(
        clients.contains(client_id) && !clients.contains(secret),
        "{clients}"
    );
    let scopes = ok(db, &["scope", "list"]);
    let order: Vec<_> = scopes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["polls:detail", "polls:index", "polls:stats", "polls:vote"],
        "by title"
    );
    assert!(scopes.contains("Poll details  disabled"), "{scopes}");
    assert!(ok(db, &["user", "list"]).contains("alice     yes    yes"));
}

async fn bad_input_fails_cleanly_and_changes_nothing(db: &TestDatabase) {
    ok(db, &["migrate"]);
    ok(db, &["user", "create", "alice", "--password", "pw"]);
    ok(
        db,
        &[
            "client", "register", "--title", "Taken", "--id", "taken", "--owner", "alice",
        ],
    );
    let before = listings(db);
    let register = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "register",
            "--owner",
            "alice",
            "--scope",
            "new:scope",
        ];
        args.extend_from_slice(extra);
        fails(db, &args)
    };
    assert!(register(&["--title", "Taken"]).contains("client title \"Taken\" already exists"));
    assert!(register(&["--title", "New", "--id", "taken"]).contains("client identifier"));
    let unknown_owner = fails(
        db,
        &["client", "register", "--title", "New", "--owner", "bob"],
    );
    assert!(
        unknown_owner.contains("unknown user \"bob\""),
        "{unknown_owner}"
    );
    let strict = register(&[
        "--title",
        "New",
        "--scope",
        "nope:x",
        "--no-register-unknown-scopes",
    ]);
    assert!(strict.contains("unknown scope"), "{strict}");
    for uri in [
        "javascript:alert(1)",
        "data:text/html,x",
        "/relative",
        "https://a.example/#f",
        "http://myapp.com/",
    ] {
        let message = register(&["--title", "New", "--redirect-uri", uri]);
        assert!(message.contains("redirect URI"), "{uri}: {message}");
    }
    for scope in ["has space", "quo\"te", "ctrl\u{7}char", &"s".repeat(101)] {
        let message = fails(db, &["scope", "add", scope]);
        assert!(message.contains("scope identifier"), "{message}");
        assert!(!message.contains('\u{7}'), "control characters are escaped");
    }
    assert!(register(&["--title", "New", "--token-lifetime", "0"]).contains("token lifetime"));
    assert!(fails(db, &["user", "create", "alice", "--password", "pw"]).contains("already exists"));
    assert!(fails(db, &["user", "create", "bob", "--password", ""]).contains("must not be empty"));
    assert_eq!(listings(db), before, "nothing was written");

    // Usage errors are clap's: a non-zero status and a message naming the problem.
    let output = run(
        db,
        &[
            "client", "register", "--title", "New", "--owner", "alice", "--secret", "s",
        ],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--confidential"),
        "{}",
        stderr(&output)
    );
    let output = run(
        db,
        &[
            "client",
            "register",
            "--title",
            "New",
            "--owner",
            "alice",
            "--token-lifetime",
            "soon",
        ],
    );
    assert!(!output.status.success());
    assert_eq!(listings(db), before);
}

async fn password_can_come_from_standard_input(db: &TestDatabase) {
    ok(db, &["migrate"]);
    let mut child = command(db.url(), &["user", "create", "carol", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let store = oauthost::store::connect(db.url()).await.unwrap();
    let (_, hash) = store.find_user_credentials("carol").await.unwrap().unwrap();
    assert!(oauthost_core::password::verify(
        "from stdin",
        &hash.unwrap()
    ));
}

async fn debug_mode_from_the_environment_allows_plain_http(db: &TestDatabase) {
    ok(db, &["migrate"]);
    ok(db, &["user", "create", "alice", "--password", "pw"]);
    let output = command(
        db.url(),
        &[
            "client",
            "register",
            "--title",
            "Dev",
            "--redirect-uri",
            "http://myapp.com/",
            "--owner",
            "alice",
        ],
    )
    .env("OAUTHOST_DEBUG", "1")
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("warning: redirect URI http://myapp.com/"));
    let debug_flag = run(
        db,
        &[
            "--debug",
            "client",
            "register",
            "--title",
            "Dev2",
            "--redirect-uri",
            "http://myapp.com/",
            "--owner",
            "alice",
        ],
    );
    assert!(debug_flag.status.success(), "{}", stderr(&debug_flag));
}

async fn serve_answers_health_checks(db: &TestDatabase) {
    ok(db, &["migrate"]);
    let server = ServerProcess::start(
        BIN,
        &["--database-url", db.url(), "serve", "--bind", "127.0.0.1:0"],
        &[],
    );
    let health: Value = reqwest::get(format!("{}/healthz", server.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let expected = match db.backend() {
        TestBackend::Sqlite => "SQLite",
        TestBackend::Postgres => "PostgreSQL",
    };
    assert_eq!(health["database"], expected);
}

async fn serve_never_runs_on_an_outdated_schema_unless_told(db: &TestDatabase) {
    // A fresh database: PostgreSQL refuses; SQLite applies the migrations itself unless
    // --no-migrate.
    let refused = run(db, &["serve", "--bind", "127.0.0.1:0", "--no-migrate"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("run `migrate` first"),
        "{}",
        stderr(&refused)
    );
    match db.backend() {
        TestBackend::Postgres => {
            let refused = run(db, &["serve", "--bind", "127.0.0.1:0"]);
            assert!(
                stderr(&refused).contains("pending migration"),
                "{}",
                stderr(&refused)
            );
        }
        TestBackend::Sqlite => {
            let server = ServerProcess::start(
                BIN,
                &["--database-url", db.url(), "serve", "--bind", "127.0.0.1:0"],
                &[],
            );
            let status = reqwest::get(format!("{}/healthz", server.base_url()))
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
            drop(server);
            assert!(ok(db, &["migrate"]).starts_with("No migrations to apply"));
        }
    }
}

backend_tests!(
    migrate_says_what_it_applied_and_is_idempotent,
    the_seed_quick_start_from_the_command_line,
    bad_input_fails_cleanly_and_changes_nothing,
    password_can_come_from_standard_input,
    debug_mode_from_the_environment_allows_plain_http,
    serve_answers_health_checks,
    serve_never_runs_on_an_outdated_schema_unless_told,
    syncscopes_names_the_apps_this_binary_has,
);

async fn syncscopes_names_the_apps_this_binary_has(db: &TestDatabase) {
    ok(db, &["migrate"]);
    let message = fails(db, &["syncscopes", "polls"]);
    assert_eq!(
        message,
        "error: unknown app \"polls\": it is not part of this binary (apps here: none)\n"
    );
}

/// Database URLs that cannot work are reported on one line, without a password.
#[test]
fn unusable_databases_are_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file_as_folder = dir.path().join("file");
    std::fs::write(&file_as_folder, "").unwrap();
    let cases = [
        ("mysql://root@localhost/db", "invalid database URL"),
        ("not a url", "invalid database URL"),
        (
            "postgres://bob:hunter2@127.0.0.1:1/db",
            "Connection refused",
        ),
        // /proc refuses new files even to root: a read-only location.
        (
            "sqlite:///proc/oauthost-test.db",
            "unable to open database file",
        ),
        (
            &format!("sqlite://{}/db.sqlite", file_as_folder.display()),
            "unable to open database file",
        ),
    ];
    for (url, expected) in cases {
        let output = command(url, &["migrate"]).output().unwrap();
        assert!(!output.status.success(), "{url}");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.starts_with("error: ") && message.contains(expected),
            "{url}: {message}"
        );
        assert!(!message.contains("hunter2"), "password shown: {message}");
    }
}
