//! The `polls` binary: oauthost's commands plus the polls tables, and `syncscopes`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::{Command, Output};

use oauthost_testkit::{backend_tests, ServerProcess, TestDatabase};

const POLLS: &str = env!("CARGO_BIN_EXE_polls");

fn run(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(POLLS)
        .arg("--database-url")
        .arg(db.url())
        .args(args)
        .env_remove("OAUTHOST_DATABASE_URL")
        .env_remove("OAUTHOST_DEBUG")
        .output()
        .unwrap()
}

fn ok(db: &TestDatabase, args: &[&str]) -> String {
    let output = run(db, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn migrate_creates_and_seeds_the_polls_tables_once(db: &TestDatabase) {
    assert_eq!(
        ok(db, &["migrate"]),
        "Applied migration 1: initial\nApplied migration 2: change notifications\nApplied migration 3: admin indexes\nApplied migration 4: scope change notifications\nApplied migration 5: partial token indexes\nApplied migration 6: token reference checks\nPolls: created the tables and seeded 5 sample polls.\n"
    );
    assert_eq!(
        ok(db, &["migrate"]),
        "No migrations to apply: the database schema is up to date.\nPolls: the tables are up to date.\n"
    );
}

async fn syncscopes_creates_each_scope_once(db: &TestDatabase) {
    ok(db, &["migrate"]);
    ok(
        db,
        &["scope", "add", "polls:index", "--title", "Browse the polls"],
    );
    assert_eq!(
        ok(db, &["syncscopes", "polls"]),
        "Created scope my_polls:my_stats (\"My Polls My Stats\").\n\
         Created scope polls:detail (\"Polls Detail\").\n\
         Scope polls:index exists; skipped.\n\
         Created scope polls:results (\"Polls Results\").\n\
         Created scope polls:vote (\"Polls Vote\").\n"
    );
    let scopes = ok(db, &["scope", "list"]);
    assert!(
        scopes.contains("polls:index        Browse the polls"),
        "kept: {scopes}"
    );
    assert!(
        scopes.contains("polls:results      Polls Results"),
        "{scopes}"
    );
    let again = ok(db, &["syncscopes", "polls"]);
    assert_eq!(
        again
            .lines()
            .filter(|l| l.ends_with("exists; skipped."))
            .count(),
        5
    );

    let unknown = run(db, &["syncscopes", "polls", "blog"]);
    assert!(!unknown.status.success());
    let message = String::from_utf8(unknown.stderr).unwrap();
    assert_eq!(
        message,
        "error: unknown app \"blog\": it is not part of this binary (apps here: polls)\n"
    );
}

async fn serve_runs_the_polls_views_beside_oauthost(db: &TestDatabase) {
    ok(db, &["migrate"]);
    let server = ServerProcess::start(
        POLLS,
        &[
            "--database-url",
            db.url(),
            "--debug",
            "serve",
            "--bind",
            "127.0.0.1:0",
        ],
        &[],
    );
    let polls = reqwest::get(format!("{}/polls/", server.base_url()))
        .await
        .unwrap();
    assert_eq!(
        polls.status(),
        401,
        "the polls views are there, and protected"
    );
    let metadata = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        server.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(metadata.status(), 200, "and so is oauthost");
}

backend_tests!(
    migrate_creates_and_seeds_the_polls_tables_once,
    syncscopes_creates_each_scope_once,
    serve_runs_the_polls_views_beside_oauthost,
);
