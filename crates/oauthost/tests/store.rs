//! One conformance suite for the store traits, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;

use oauthost::store::{
    self,
    changes::{Change, ChangeListener},
    AuthorizationCode, CodeExchange, DynStore, NewAuthorizationCode, NewClient, NewScope, NewToken,
    NewUser, SessionRecord, StoreError, Token,
};
use oauthost_core::{
    client::{ClientType, GrantTypes},
    error::OAuthError,
    redirect::RedirectUri,
    secret::{Secret, SecretHash},
};
use oauthost_testkit::{backend_tests, TestBackend, TestDatabase};
use time::OffsetDateTime;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
}

async fn open(db: &TestDatabase) -> DynStore {
    let store = store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn user(store: &DynStore, name: &str) -> i64 {
    store
        .create_user(
            NewUser {
                username: name.into(),
                password_hash: Some("$argon2id$fake".into()),
                is_staff: false,
                is_active: true,
            },
            at(0),
        )
        .await
        .unwrap()
        .id
}

fn new_client(registrant_id: i64, title: &str, identifier: &str) -> NewClient {
    NewClient {
        identifier: identifier.into(),
        title: title.into(),
        secret_hash: None,
        client_type: ClientType::Public,
        registrant_id,
        description: String::new(),
        link: None,
        token_lifetime: 3600,
        hash_sign_supported: true,
        grant_types: GrantTypes::default(),
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb", false).unwrap()],
        scopes: vec![],
        register_unknown_scopes: true,
    }
}

async fn count(store: &DynStore) -> (usize, usize) {
    (
        store.list_clients().await.unwrap().len(),
        store.list_scopes().await.unwrap().len(),
    )
}

async fn migrations_apply_once(db: &TestDatabase) {
    let store = store::connect(db.url()).await.unwrap();
    assert!(!store.pending_migrations().await.unwrap().is_empty());
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied[0].version, 1);
    assert!(store.pending_migrations().await.unwrap().is_empty());
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "second run applies nothing"
    );
    store.ping().await.unwrap();
}

async fn users_are_unique_by_username(db: &TestDatabase) {
    let store = open(db).await;
    let id = user(&store, "alice").await;
    let found = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(found.id, id);
    assert!(found.is_active && !found.is_staff);
    assert_eq!(found.created_at, at(0));
    assert_eq!(
        store.user_by_id(id).await.unwrap().unwrap().username,
        "alice"
    );
    let (_, hash) = store.find_user_credentials("alice").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$fake"));

    let again = store
        .create_user(
            NewUser {
                username: "alice".into(),
                password_hash: None,
                is_staff: true,
                is_active: true,
            },
            at(1),
        )
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Duplicate {
                what: "username",
                ..
            })
        ),
        "{again:?}"
    );
    user(&store, "bob").await;
    let names: Vec<_> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(store.find_user("carol").await.unwrap().is_none());
}

async fn scopes_are_listed_by_title(db: &TestDatabase) {
    let store = open(db).await;
    for (identifier, title, enabled) in [
        ("polls:vote", "Vote", true),
        ("polls:index", "Browse polls", false),
    ] {
        store
            .create_scope(NewScope {
                identifier: identifier.parse().unwrap(),
                title: title.into(),
                enabled,
            })
            .await
            .unwrap();
    }
    let titles: Vec<_> = store
        .list_scopes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert_eq!(titles, ["Browse polls", "Vote"]);
    let index = store
        .find_scope(&"polls:index".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!index.enabled);
    let duplicate = store
        .create_scope(NewScope {
            identifier: "polls:vote".parse().unwrap(),
            title: "Other".into(),
            enabled: true,
        })
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate { .. })),
        "{duplicate:?}"
    );
}

async fn clients_are_registered_with_endpoints_and_scopes(db: &TestDatabase) {
    let store = open(db).await;
    let alice = user(&store, "alice").await;
    store
        .create_scope(NewScope {
            identifier: "polls:index".parse().unwrap(),
            title: "Index".into(),
            enabled: true,
        })
        .await
        .unwrap();
    let secret = Secret::generate();
    let mut new = new_client(alice, "Polls app", "polls-app");
    new.client_type = ClientType::Confidential;
    new.secret_hash = Some(secret.hash());
    new.redirect_uris
        .push(RedirectUri::parse("http://localhost:9/cb", false).unwrap());
    new.scopes = vec![
        "polls:index".parse().unwrap(),
        "polls:vote".parse().unwrap(),
    ];
    let client = store.register_client(new, at(5)).await.unwrap();

    let found = store.find_client("polls-app").await.unwrap().unwrap();
    assert_eq!(found, client);
    assert!(found.secret_hash.unwrap().matches(secret.expose()));
    assert_eq!(found.client_type, ClientType::Confidential);
    assert_eq!(found.created_at, at(5));
    assert_eq!(
        store.redirect_uris(client.id).await.unwrap(),
        ["https://app.example/cb", "http://localhost:9/cb"]
    );
    let scopes: Vec<_> = store
        .client_scopes(client.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.identifier.to_string(), s.title))
        .collect();
    assert_eq!(
        scopes,
        [
            ("polls:index".to_owned(), "Index".to_owned()),
            ("polls:vote".to_owned(), "Polls Vote".to_owned()),
        ],
        "the unknown scope was created with a default title"
    );
    let listed = store.list_clients().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].registrant, "alice");
    assert!(store.find_client("nope").await.unwrap().is_none());
}

async fn failed_registrations_write_nothing(db: &TestDatabase) {
    let store = open(db).await;
    let alice = user(&store, "alice").await;
    store
        .register_client(new_client(alice, "Taken", "taken-id"), at(0))
        .await
        .unwrap();
    let before = count(&store).await;

    let mut same_title = new_client(alice, "Taken", "other-id");
    same_title.scopes = vec!["new:scope".parse().unwrap()];
    let error = store.register_client(same_title, at(1)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Duplicate { what: "client title", value } if value == "Taken"),
        "{error:?}"
    );

    let same_id = new_client(alice, "Other", "taken-id");
    let error = store.register_client(same_id, at(1)).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Duplicate {
                what: "client identifier",
                ..
            }
        ),
        "{error:?}"
    );

    let mut strict = new_client(alice, "Strict", "strict");
    strict.scopes = vec!["missing:scope".parse().unwrap()];
    strict.register_unknown_scopes = false;
    let error = store.register_client(strict, at(1)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::NotFound { what: "scope", value } if value == "missing:scope"),
        "{error:?}"
    );

    let orphan = new_client(alice + 1000, "Orphan", "orphan");
    let error = store.register_client(orphan, at(1)).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotFound {
                what: "registrant",
                ..
            }
        ),
        "{error:?}"
    );

    // Fails at the client insert, after the unknown scope was created: rolled back too.
    let mut late_failure = new_client(alice, "Late", "late");
    late_failure.scopes = vec!["created:then-rolled-back".parse().unwrap()];
    late_failure.token_lifetime = 0;
    assert!(store.register_client(late_failure, at(1)).await.is_err());

    assert_eq!(count(&store).await, before, "nothing was written");
}

async fn setup_client(store: &DynStore) -> (i64, i64) {
    let alice = user(store, "alice").await;
    let client = store
        .register_client(new_client(alice, "App", "app"), at(0))
        .await
        .unwrap();
    (alice, client.id)
}

/// A second client, registered by `registrant`.
async fn other_client(store: &DynStore, registrant: i64) -> i64 {
    store
        .register_client(new_client(registrant, "Other", "other"), at(0))
        .await
        .unwrap()
        .id
}

fn new_code(user_id: i64, client_id: i64, secret: &Secret) -> NewAuthorizationCode {
    NewAuthorizationCode {
        code_hash: secret.hash(),
        client_id,
        user_id,
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_explicit: true,
        scopes: "polls:index polls:vote".parse().unwrap(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some("S256".into()),
        issued_at: at(10),
        expires_at: at(610),
    }
}

fn token_for(client_id: i64) -> NewToken {
    NewToken {
        access_token_hash: Secret::generate().hash(),
        refresh_token_hash: None,
        user_id: None,
        client_id,
        code_id: None,
        scopes: "polls:index".parse().unwrap(),
        issued_at: at(20),
        expires_at: at(3620),
        refresh_family: None,
    }
}

async fn codes_are_exchanged_once(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let other = other_client(&store, alice).await;
    let secret = Secret::generate();
    let stored = store
        .insert_code(new_code(alice, client, &secret))
        .await
        .unwrap();
    assert!(!stored.consumed && stored.redirect_uri_explicit);
    assert_eq!(stored.scopes.to_string(), "polls:index polls:vote");
    let issue = |code: &AuthorizationCode| -> Result<NewToken, OAuthError> {
        assert_eq!(code.code_challenge_method.as_deref(), Some("S256"));
        Ok(token_for(code.client_id))
    };

    assert_eq!(
        store
            .exchange_code(&secret.hash(), other, &issue)
            .await
            .unwrap(),
        CodeExchange::Unknown,
        "another client's code is not even touched"
    );
    let token = match store
        .exchange_code(&secret.hash(), client, &issue)
        .await
        .unwrap()
    {
        CodeExchange::Issued(token) => token,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        token.code_id,
        Some(stored.id),
        "the token is tied to its code"
    );
    assert!(matches!(
        store.exchange_code(&secret.hash(), client, &issue).await.unwrap(),
        CodeExchange::AlreadyUsed(code) if code.id == stored.id && code.consumed
    ));
    assert_eq!(
        store
            .exchange_code(&SecretHash::of("unknown"), client, &issue)
            .await
            .unwrap(),
        CodeExchange::Unknown
    );

    // A refused check still consumes the code, and issues nothing.
    let refused = Secret::generate();
    store
        .insert_code(new_code(alice, client, &refused))
        .await
        .unwrap();
    let refuse = |_: &AuthorizationCode| -> Result<NewToken, OAuthError> {
        Err(OAuthError::invalid_grant("expired"))
    };
    assert_eq!(
        store
            .exchange_code(&refused.hash(), client, &refuse)
            .await
            .unwrap(),
        CodeExchange::Refused(OAuthError::invalid_grant("expired"))
    );
    assert!(matches!(
        store
            .exchange_code(&refused.hash(), client, &issue)
            .await
            .unwrap(),
        CodeExchange::AlreadyUsed(_)
    ));
}

async fn concurrent_exchanges_succeed_exactly_once(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let secret = Secret::generate();
    store
        .insert_code(new_code(alice, client, &secret))
        .await
        .unwrap();
    let hash = secret.hash();
    let attempts: Vec<_> = (0..24)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let issue = |code: &AuthorizationCode| Ok(token_for(code.client_id));
                store.exchange_code(&hash, client, &issue).await.unwrap()
            })
        })
        .collect();
    let mut issued = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            CodeExchange::Issued(_) => issued += 1,
            CodeExchange::AlreadyUsed(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(issued, 1);
}

/// Inserts every token in a task of its own, all at once (so the store batches them), and
/// answers each token sent with what its insert answered, in the order sent.
async fn insert_concurrently(
    store: &DynStore,
    tokens: impl Iterator<Item = NewToken>,
) -> Vec<(NewToken, Result<Token, StoreError>)> {
    let inserts: Vec<_> = tokens
        .map(|token| {
            let store = Arc::clone(store);
            tokio::spawn(async move { (token.clone(), store.insert_token(token).await) })
        })
        .collect();
    let mut answers = Vec::with_capacity(inserts.len());
    for insert in inserts {
        answers.push(insert.await.unwrap());
    }
    answers
}

async fn batched_token_inserts_answer_the_tokens_as_stored(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    // Concurrent inserts are written in batches that read back only each row's id: the
    // token answered must still be the one a later read finds, times to the second.
    let tokens = (0..60_i64).map(|n| {
        let mut token = token_for(client);
        token.user_id = (n % 2 == 0).then_some(alice);
        token.refresh_token_hash = (n % 3 == 0).then(|| Secret::generate().hash());
        token.refresh_family = (n % 3 == 0).then(|| format!("family-{n}"));
        token.issued_at = at(20) + time::Duration::milliseconds(7 * n + 1);
        token
    });
    for (sent, result) in insert_concurrently(&store, tokens).await {
        let token = result.unwrap();
        let found = store
            .find_token(&sent.access_token_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(token, found, "the answer is the token as stored");
        assert_eq!(
            token.issued_at.unix_timestamp(),
            sent.issued_at.unix_timestamp()
        );
    }
}

async fn concurrent_token_inserts_are_each_stored_as_given(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    // Concurrent inserts are written in batches: each must come back as its own row, and a
    // faulty one (an unknown client or user) must fail alone.
    let tokens = (0..120_i64).map(|n| {
        let mut token = token_for(if n % 40 == 7 { 999_999 } else { client });
        token.user_id = match n % 40 {
            13 => Some(999_999),
            _ => (n % 2 == 0).then_some(alice),
        };
        token.expires_at = at(1000 + n);
        token
    });
    let mut stored = 0;
    for (sent, result) in insert_concurrently(&store, tokens).await {
        if sent.client_id == 999_999 || sent.user_id == Some(999_999) {
            assert!(
                result.is_err(),
                "a token of an unknown client or user is refused"
            );
            assert!(store
                .find_token(&sent.access_token_hash)
                .await
                .unwrap()
                .is_none());
            continue;
        }
        let token = result.unwrap();
        assert_eq!(token.access_token_hash, sent.access_token_hash);
        assert_eq!(
            (token.user_id, token.expires_at),
            (sent.user_id, sent.expires_at)
        );
        let found = store
            .find_token(&sent.access_token_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, found.user_id), (token.id, sent.user_id));
        stored += 1;
    }
    assert_eq!(stored, 114);
}

/// Runs `sql` on a connection of its own, outside the store.
async fn execute(db: &TestDatabase, sql: &str) -> Result<u64, sqlx::Error> {
    use sqlx::Connection as _;

    // The same two steps on each backend's connection type (sqlx's `Any` driver is not
    // enabled for this crate's tests).
    macro_rules! run_on {
        ($connection:ty) => {{
            let mut connection = <$connection>::connect(db.url()).await?;
            sqlx::query(sql)
                .execute(&mut connection)
                .await?
                .rows_affected()
        }};
    }
    Ok(match db.backend() {
        TestBackend::Sqlite => run_on!(sqlx::SqliteConnection),
        TestBackend::Postgres => run_on!(sqlx::PgConnection),
    })
}

async fn deleting_a_client_or_a_user_deletes_their_tokens(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let bob = user(&store, "bob").await;
    let other = other_client(&store, alice).await;
    let token = |client_id, user_id| {
        let mut token = token_for(client_id);
        token.user_id = user_id;
        let store = Arc::clone(&store);
        async move { store.insert_token(token).await.unwrap().access_token_hash }
    };
    let of_client = [token(client, None).await, token(client, Some(alice)).await];
    let of_bob = token(other, Some(bob)).await;
    let kept = [token(other, None).await, token(other, Some(alice)).await];
    let found = |hash: SecretHash| {
        let store = Arc::clone(&store);
        async move { store.find_token(&hash).await.unwrap().is_some() }
    };

    assert!(store.delete_client(client).await.unwrap());
    for hash in of_client {
        assert!(!found(hash).await, "the client's tokens went with it");
    }
    assert!(found(of_bob).await);

    let deleted = execute(db, &format!("DELETE FROM oauthost_users WHERE id = {bob}")).await;
    assert_eq!(deleted.unwrap(), 1);
    assert!(!found(of_bob).await, "the user's tokens went with them");
    for hash in kept {
        assert!(found(hash).await, "other tokens stay");
    }

    // Nor can a stored token be moved to a client or user that does not exist (PostgreSQL
    // refuses to move it at all).
    for column in ["client_id", "user_id"] {
        let moved = execute(
            db,
            &format!("UPDATE oauthost_tokens SET {column} = 999999 WHERE client_id = {other}"),
        )
        .await;
        assert!(
            matches!(&moved, Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation()),
            "{column}: {moved:?}"
        );
    }
    assert!(found(kept[1]).await);
}

async fn concurrent_exchanges_of_many_codes_each_issue_once(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let other = other_client(&store, alice).await;
    // Exchanges are written in batches: 20 codes, each presented three times at once,
    // issue one token each; presented by another client, a code is not touched; a code
    // whose check fails is consumed without a token; an unknown code is unknown.
    let mut codes = Vec::new();
    for _ in 0..22 {
        let secret = Secret::generate();
        let stored = store
            .insert_code(new_code(alice, client, &secret))
            .await
            .unwrap();
        codes.push((secret.hash(), stored.id));
    }
    let refused = codes[20].0;
    let untouched = codes[21].0;
    let mut attempts = Vec::new();
    for _ in 0..3 {
        for (hash, _) in &codes[..21] {
            let (store, hash) = (Arc::clone(&store), *hash);
            attempts.push(tokio::spawn(async move {
                let check = |code: &AuthorizationCode| {
                    if code.code_hash == refused {
                        Err(OAuthError::invalid_grant("expired"))
                    } else {
                        Ok(token_for(code.client_id))
                    }
                };
                (
                    hash,
                    store.exchange_code(&hash, client, &check).await.unwrap(),
                )
            }));
        }
        for (hash, by) in [(untouched, other), (SecretHash::of("unknown"), client)] {
            let store = Arc::clone(&store);
            attempts.push(tokio::spawn(async move {
                let check = |code: &AuthorizationCode| Ok(token_for(code.client_id));
                (hash, store.exchange_code(&hash, by, &check).await.unwrap())
            }));
        }
    }
    let mut issued = std::collections::HashMap::new();
    for attempt in attempts {
        let (hash, outcome) = attempt.await.unwrap();
        match outcome {
            CodeExchange::Issued(token) => {
                let code_id = codes.iter().find(|(h, _)| *h == hash).unwrap().1;
                assert_eq!(
                    token.code_id,
                    Some(code_id),
                    "the token is tied to its code"
                );
                let found = store
                    .find_token(&token.access_token_hash)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(found.id, token.id);
                assert!(issued.insert(hash, token).is_none(), "a code issued twice");
            }
            CodeExchange::AlreadyUsed(code) => assert_eq!(code.code_hash, hash),
            CodeExchange::Refused(error) => {
                assert_eq!(hash, refused);
                assert_eq!(error, OAuthError::invalid_grant("expired"));
            }
            CodeExchange::Unknown => assert!(hash != refused && !issued.contains_key(&hash)),
        }
    }
    assert_eq!(issued.len(), 20, "each good code issues exactly one token");
    assert!(matches!(
        store
            .exchange_code(&refused, client, &|code: &AuthorizationCode| Ok(token_for(
                code.client_id
            )))
            .await
            .unwrap(),
        CodeExchange::AlreadyUsed(_)
    ));
    assert!(matches!(
        store
            .exchange_code(&untouched, client, &|code: &AuthorizationCode| Ok(
                token_for(code.client_id)
            ))
            .await
            .unwrap(),
        CodeExchange::Issued(_)
    ));
}

async fn tokens_are_found_by_hash_and_revoked(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let code_secret = Secret::generate();
    let code = store
        .insert_code(new_code(alice, client, &code_secret))
        .await
        .unwrap();
    let access = Secret::generate();
    let refresh = Secret::generate();
    let token = store
        .insert_token(NewToken {
            access_token_hash: access.hash(),
            refresh_token_hash: Some(refresh.hash()),
            user_id: Some(alice),
            client_id: client,
            code_id: Some(code.id),
            scopes: "polls:index".parse().unwrap(),
            issued_at: at(20),
            expires_at: at(3620),
            refresh_family: Some("family-1".into()),
        })
        .await
        .unwrap();
    let other = store
        .insert_token(NewToken {
            access_token_hash: Secret::generate().hash(),
            refresh_token_hash: None,
            user_id: None,
            client_id: client,
            code_id: None,
            scopes: "polls:index".parse().unwrap(),
            issued_at: at(20),
            expires_at: at(3620),
            refresh_family: None,
        })
        .await
        .unwrap();

    let found = store.find_token(&access.hash()).await.unwrap().unwrap();
    assert_eq!(found, token);
    let details = store
        .find_token_details(&access.hash(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(details.token, token);
    assert_eq!(details.client_identifier, "app");
    assert_eq!(details.username.as_deref(), Some("alice"));
    assert!(details.user_active);
    let by_refresh = store
        .find_token_details(&refresh.hash(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_refresh.token.id, token.id);
    assert!(store
        .find_token_details(&refresh.hash(), false)
        .await
        .unwrap()
        .is_none());
    let userless = store
        .find_token_details(&other.access_token_hash, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((userless.username, userless.user_active), (None, true));
    store.set_user_active(alice, false).await.unwrap();
    assert!(
        !store
            .find_token_details(&access.hash(), false)
            .await
            .unwrap()
            .unwrap()
            .user_active
    );
    store.set_user_active(alice, true).await.unwrap();
    assert_eq!(found.refresh_token_hash, Some(refresh.hash()));
    assert!(!found.revoked && !found.refresh_rotated);
    assert!(
        store.find_token(&refresh.hash()).await.unwrap().is_none(),
        "a refresh token is not an access token"
    );

    assert_eq!(store.revoke_tokens_from_code(code.id).await.unwrap(), 1);
    assert_eq!(store.revoke_tokens_from_code(code.id).await.unwrap(), 0);
    assert!(
        store
            .find_token(&access.hash())
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !store
            .find_token(&other.access_token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    assert!(store.revoke_token(other.id).await.unwrap());
    assert!(
        store
            .find_token(&other.access_token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(!store.revoke_token(other.id + 1000).await.unwrap());
}

async fn sessions_expire_and_are_replaced(db: &TestDatabase) {
    let store = open(db).await;
    let id = SecretHash::of("session id");
    let session = SessionRecord {
        id_hash: id,
        data: b"{\"user\":1}".to_vec(),
        expires_at: at(100),
    };
    store.save_session(&session).await.unwrap();
    assert_eq!(
        store.load_session(&id, at(99)).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store.load_session(&id, at(100)).await.unwrap(),
        None,
        "expired"
    );

    let renewed = SessionRecord {
        data: b"{\"user\":2}".to_vec(),
        expires_at: at(200),
        ..session
    };
    store.save_session(&renewed).await.unwrap();
    assert_eq!(
        store.load_session(&id, at(150)).await.unwrap(),
        Some(renewed)
    );

    store.delete_session(&id).await.unwrap();
    assert_eq!(store.load_session(&id, at(0)).await.unwrap(), None);
}

fn refreshable(user_id: i64, client_id: i64, family: &str) -> (NewToken, Secret) {
    let refresh = Secret::generate();
    let token = NewToken {
        access_token_hash: Secret::generate().hash(),
        refresh_token_hash: Some(refresh.hash()),
        user_id: Some(user_id),
        client_id,
        code_id: None,
        scopes: "polls:index".parse().unwrap(),
        issued_at: at(0),
        expires_at: at(3600),
        refresh_family: Some(family.into()),
    };
    (token, refresh)
}

async fn refresh_rotation_is_atomic_and_families_revoke_together(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    let (first, first_refresh) = refreshable(alice, client, "fam");
    let first = store.insert_token(first).await.unwrap();
    let (unrelated, _) = refreshable(alice, client, "other");
    let unrelated = store.insert_token(unrelated).await.unwrap();
    assert_eq!(
        store
            .find_token_by_refresh(&first_refresh.hash())
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );

    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let store = Arc::clone(&store);
            let (next, _) = refreshable(alice, client, "fam");
            tokio::spawn(async move { store.rotate_token(first.id, next).await.unwrap() })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        winners.extend(attempt.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    let old = store
        .find_token(&first.access_token_hash)
        .await
        .unwrap()
        .unwrap();
    assert!(old.refresh_rotated && old.revoked);

    assert_eq!(
        store.revoke_family("fam").await.unwrap(),
        1,
        "the new token"
    );
    assert!(
        store
            .find_token(&winners[0].access_token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !store
            .find_token(&unrelated.access_token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
}

async fn concurrent_rotations_of_many_tokens_each_win_once(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    // Rotations are written in batches: 30 tokens, each rotated by three concurrent
    // attempts, give exactly one new token each, and a revoked one gives none.
    let mut olds = Vec::new();
    for n in 0..31 {
        let (token, _) = refreshable(alice, client, &format!("family-{n}"));
        olds.push(store.insert_token(token).await.unwrap());
    }
    assert!(store.revoke_token(olds[30].id).await.unwrap());
    let rotate = |old: &Token, client_id: i64| {
        let store = Arc::clone(&store);
        let (mut next, _) = refreshable(alice, client, old.refresh_family.as_deref().unwrap());
        next.client_id = client_id;
        let old_id = old.id;
        tokio::spawn(async move {
            let rotated = store.rotate_token(old_id, next.clone()).await;
            (old_id, next, rotated)
        })
    };
    let attempts: Vec<_> = (0..3)
        .flat_map(|_| olds.iter().map(|old| rotate(old, client)))
        .collect();
    let mut winners = std::collections::HashMap::new();
    for attempt in attempts {
        let (old_id, sent, rotated) = attempt.await.unwrap();
        if let Some(token) = rotated.unwrap() {
            assert_eq!(token.access_token_hash, sent.access_token_hash);
            assert_eq!(token.refresh_family, sent.refresh_family);
            assert!(
                winners.insert(old_id, token).is_none(),
                "a token was rotated twice"
            );
        }
    }
    assert_eq!(winners.len(), 30, "each live token is rotated exactly once");
    assert!(
        !winners.contains_key(&olds[30].id),
        "a revoked token is not"
    );
    for old in &olds[..30] {
        let stored = store
            .find_token(&old.access_token_hash)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.refresh_rotated && stored.revoked);
        let new = &winners[&old.id];
        let found = store
            .find_token(&new.access_token_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, found.revoked), (new.id, false));
    }

    // A replacement naming an unknown client fails alone, leaving its old token as it was.
    let mut fresh = Vec::new();
    for n in 0..8 {
        let (token, _) = refreshable(alice, client, &format!("fresh-{n}"));
        fresh.push(store.insert_token(token).await.unwrap());
    }
    let attempts: Vec<_> = fresh
        .iter()
        .enumerate()
        .map(|(n, old)| rotate(old, if n == 5 { 999_999 } else { client }))
        .collect();
    for (n, attempt) in attempts.into_iter().enumerate() {
        let (_, _, rotated) = attempt.await.unwrap();
        if n == 5 {
            assert!(rotated.is_err(), "a token of an unknown client is refused");
        } else {
            assert!(rotated.unwrap().is_some());
        }
    }
    let kept = store
        .find_token(&fresh[5].access_token_hash)
        .await
        .unwrap()
        .unwrap();
    assert!(!kept.refresh_rotated && !kept.revoked);
}

async fn revoking_a_code_reaches_the_tokens_refreshed_from_it(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    // Two codes, each exchanged for a refreshable token that was then refreshed once.
    let mut chains = Vec::new();
    for family in ["fam-a", "fam-b"] {
        let code = store
            .insert_code(new_code(alice, client, &Secret::generate()))
            .await
            .unwrap();
        let (mut first, _) = refreshable(alice, client, family);
        first.code_id = Some(code.id);
        let first = store.insert_token(first).await.unwrap();
        let (next, _) = refreshable(alice, client, family);
        let next = store.rotate_token(first.id, next).await.unwrap().unwrap();
        chains.push((code.id, next.access_token_hash));
    }
    let unrelated = store.insert_token(token_for(client)).await.unwrap();
    let revoked = |hash| {
        let store = store.clone();
        async move { store.find_token(&hash).await.unwrap().unwrap().revoked }
    };

    // A replayed code (the grant path), then the admin site's revocation.
    assert_eq!(store.revoke_tokens_from_code(chains[0].0).await.unwrap(), 1);
    assert!(revoked(chains[0].1).await);
    assert!(
        !revoked(chains[1].1).await,
        "another code's chain is untouched"
    );
    assert_eq!(store.revoke_codes(&[chains[1].0]).await.unwrap(), 1);
    assert!(revoked(chains[1].1).await);
    assert_eq!(
        store.revoke_codes(&[chains[1].0]).await.unwrap(),
        0,
        "already used"
    );
    assert!(!revoked(unrelated.access_token_hash).await);
}

async fn login_failures_lock_then_recover(db: &TestDatabase) {
    let store = open(db).await;
    let key = "user:alice";
    let fail = |now: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .record_login_failure(key, at(now), at(now - 600), 3, at(now + 300))
                .await
                .unwrap()
        }
    };
    assert_eq!(fail(0).await, 1);
    assert_eq!(fail(10).await, 2);
    assert_eq!(store.login_locked_until(key, at(10)).await.unwrap(), None);
    assert_eq!(fail(20).await, 3);
    assert_eq!(
        store.login_locked_until(key, at(21)).await.unwrap(),
        Some(at(320))
    );
    assert_eq!(
        store.login_locked_until("user:bob", at(21)).await.unwrap(),
        None
    );
    assert_eq!(
        store.login_locked_until(key, at(320)).await.unwrap(),
        None,
        "recovers"
    );
    assert_eq!(
        fail(1000).await,
        1,
        "a new window starts after the old one ended"
    );
    store.clear_login_failures(key).await.unwrap();
    assert_eq!(fail(1001).await, 1);
}

async fn purge_deletes_only_what_is_dead(db: &TestDatabase) {
    let store = open(db).await;
    let (alice, client) = setup_client(&store).await;
    // Codes: one expired at 610, one alive.
    store
        .insert_code(new_code(alice, client, &Secret::generate()))
        .await
        .unwrap();
    let mut alive = new_code(alice, client, &Secret::generate());
    alive.expires_at = at(5000);
    store.insert_code(alive).await.unwrap();
    // Tokens expiring at 3620: plain (dead), with a live refresh token (kept), revoked with
    // a refresh token (dead).
    let plain = store.insert_token(token_for(client)).await.unwrap();
    let (live, _) = refreshable(alice, client, "live");
    let live = store.insert_token(live).await.unwrap();
    let (revoked, _) = refreshable(alice, client, "gone");
    let revoked = store.insert_token(revoked).await.unwrap();
    store.revoke_token(revoked.id).await.unwrap();
    store
        .save_session(&SessionRecord {
            id_hash: SecretHash::of("old"),
            data: vec![],
            expires_at: at(100),
        })
        .await
        .unwrap();
    store
        .save_session(&SessionRecord {
            id_hash: SecretHash::of("new"),
            data: vec![],
            expires_at: at(9000),
        })
        .await
        .unwrap();
    store
        .record_login_failure("user:x", at(0), at(-1), 5, at(300))
        .await
        .unwrap();

    // Within the retention time, no token goes.
    let early = store
        .purge(at(4000), at(3000), at(1000), 100)
        .await
        .unwrap();
    assert_eq!(
        (
            early.codes,
            early.tokens,
            early.sessions,
            early.login_failures
        ),
        (1, 0, 1, 1)
    );
    let late = store
        .purge(at(4000), at(4000), at(1000), 100)
        .await
        .unwrap();
    assert_eq!(late.tokens, 2, "the plain and the revoked token");
    assert!(store
        .find_token(&plain.access_token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_token(&revoked.access_token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .find_token(&live.access_token_hash)
            .await
            .unwrap()
            .is_some(),
        "its refresh token still works"
    );
    assert!(store
        .load_session(&SecretHash::of("new"), at(4000))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .purge(at(4000), at(4000), at(1000), 100)
            .await
            .unwrap()
            .total(),
        0
    );
}

/// Remembers the changes a feed publishes.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<Change>>);

impl ChangeListener for Seen {
    fn changed(&self, change: Change) {
        self.0.lock().unwrap().push(change);
    }
}

async fn changes_committed_before_catching_up_are_published(db: &TestDatabase) {
    let store = open(db).await;
    let (_, client) = setup_client(&store).await;
    // Another instance on PostgreSQL; on SQLite only the store's own pool is watched.
    let observer = match db.backend() {
        TestBackend::Postgres => store::connect(db.url()).await.unwrap(),
        TestBackend::Sqlite => store.clone(),
    };
    let feed = observer
        .change_feed()
        .expect("both backends report changes");
    let seen = Arc::new(Seen::default());
    let listener: Arc<dyn ChangeListener> = seen.clone();
    feed.subscribe(Arc::downgrade(&listener));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !feed.caught_up().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the feed never went live"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..40 {
        let token = store.insert_token(token_for(client)).await.unwrap();
        seen.0.lock().unwrap().clear();
        assert!(store.revoke_token(token.id).await.unwrap());
        assert!(feed.caught_up().await);
        assert!(
            seen.0.lock().unwrap().contains(&Change::Token(token.id)),
            "a revocation committed before catching up was not published"
        );
    }
}

backend_tests!(
    concurrent_exchanges_of_many_codes_each_issue_once,
    concurrent_rotations_of_many_tokens_each_win_once,
    changes_committed_before_catching_up_are_published,
    revoking_a_code_reaches_the_tokens_refreshed_from_it,
    purge_deletes_only_what_is_dead,
    refresh_rotation_is_atomic_and_families_revoke_together,
    login_failures_lock_then_recover,
    migrations_apply_once,
    users_are_unique_by_username,
    scopes_are_listed_by_title,
    clients_are_registered_with_endpoints_and_scopes,
    failed_registrations_write_nothing,
    codes_are_exchanged_once,
    concurrent_exchanges_succeed_exactly_once,
    concurrent_token_inserts_are_each_stored_as_given,
    deleting_a_client_or_a_user_deletes_their_tokens,
    batched_token_inserts_answer_the_tokens_as_stored,
    tokens_are_found_by_hash_and_revoked,
    sessions_expire_and_are_replaced,
);

/// A migrated PostgreSQL store whose connections carry an application name of their own
/// (returned with it), which tells them from the other tests'.
async fn named_postgres_store(db: &TestDatabase, purpose: &str) -> (store::PostgresStore, String) {
    let name = format!("oauthost_{purpose}_{}", std::process::id());
    let url = format!("{}&application_name={name}", db.url());
    let store = store::PostgresStore::connect(&url).await.unwrap();
    oauthost::store::Store::migrate(&store).await.unwrap();
    (store, name)
}

/// Tokens being written and their client being deleted, at once: the delete waits for the
/// tokens and takes them along, or the tokens wait for the delete and are refused. Either
/// way no token is left without its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_client_deleted_while_its_tokens_are_written_leaves_none() {
    use sqlx::Connection as _;

    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = open(&db).await;
    let (alice, client) = setup_client(&store).await;
    let left = |client: i64| {
        let url = db.url().to_owned();
        async move {
            let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM oauthost_tokens WHERE client_id = $1",
            )
            .bind(client)
            .fetch_one(&mut connection)
            .await
            .unwrap()
        }
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(300));

    // Written first: the delete waits for the writer's transaction, then deletes its token.
    let mut writer = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut writing = writer.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO oauthost_tokens (access_token_hash, client_id, scopes, issued_at, expires_at) \
         VALUES ('\\x01', $1, '', 0, 0)",
    )
    .bind(client)
    .execute(&mut *writing)
    .await
    .unwrap();
    let deleting = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.delete_client(client).await }
    });
    pause().await;
    assert!(!deleting.is_finished(), "the delete waits for the token");
    writing.commit().await.unwrap();
    assert!(deleting.await.unwrap().unwrap());
    assert_eq!(left(client).await, 0, "the delete took the token along");

    // Deleted first: the token waits for the delete's transaction, then is refused.
    let other = other_client(&store, alice).await;
    let mut deleter = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut deleting = deleter.begin().await.unwrap();
    sqlx::query("DELETE FROM oauthost_clients WHERE id = $1")
        .bind(other)
        .execute(&mut *deleting)
        .await
        .unwrap();
    let writing = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.insert_token(token_for(other)).await }
    });
    pause().await;
    assert!(!writing.is_finished(), "the token waits for the delete");
    deleting.commit().await.unwrap();
    let written = writing.await.unwrap();
    assert!(
        matches!(&written, Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation()),
        "a token of a client just deleted is refused: {written:?}"
    );
    assert_eq!(left(other).await, 0);

    // A token left behind by a delete that did not see it (here, one with triggers off)
    // is never accepted: its user counts as inactive.
    let third = store
        .register_client(new_client(alice, "Third", "third"), at(0))
        .await
        .unwrap()
        .id;
    let bob = user(&store, "bob").await;
    let mut token = token_for(third);
    token.user_id = Some(bob);
    let hash = store.insert_token(token).await.unwrap().access_token_hash;
    let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("DELETE FROM oauthost_users WHERE id = $1")
        .bind(bob)
        .execute(&mut admin)
        .await
        .unwrap();
    let details = store
        .find_token_details(&hash, false)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !details.user_active,
        "a token whose user is gone is refused"
    );
}

/// A PostgreSQL connection the server dropped while it sat idle (a restart, an idle
/// timeout) is found out before a request uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_a_connection_dropped_while_idle() {
    use sqlx::Connection as _;

    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (store, name) = named_postgres_store(&db, "idle").await;
    let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
    assert!(
        terminate_connections(&mut admin, &name).await > 0,
        "the store has idle connections"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let unknown = Secret::generate().hash();
    assert!(oauthost::store::TokenStore::find_token(&store, &unknown)
        .await
        .expect("a live connection replaces the dropped one")
        .is_none());
}

/// Ends every PostgreSQL connection whose application name is `name`; returns how many.
async fn terminate_connections(admin: &mut sqlx::PgConnection, name: &str) -> usize {
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(name)
    .fetch_all(admin)
    .await
    .unwrap();
    assert!(terminated.iter().all(|t| *t));
    terminated.len()
}

/// The batch writers of new tokens and of rotations hold connections of their own: one the
/// server dropped fails at most the batch that found it out, and the next batch, at once or
/// after a pause, is written through a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_writers_replace_a_dropped_connection() {
    use sqlx::Connection as _;

    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (store, name) = named_postgres_store(&db, "writers").await;
    let store: DynStore = Arc::new(store);
    let (alice, client) = setup_client(&store).await;
    let (first, _) = refreshable(alice, client, "fam");
    let mut current = store.insert_token(first).await.unwrap();
    let (next, _) = refreshable(alice, client, "fam");
    current = store.rotate_token(current.id, next).await.unwrap().unwrap();
    let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();

    // Dropped while in use: the batch that finds it out may fail, not the one after.
    assert!(terminate_connections(&mut admin, &name).await >= 2);
    let _ = store.insert_token(token_for(client)).await;
    let stored = store.insert_token(token_for(client)).await;
    assert!(
        stored.is_ok(),
        "a new connection writes new tokens: {stored:?}"
    );
    let (next, _) = refreshable(alice, client, "fam");
    if let Ok(Some(rotated)) = store.rotate_token(current.id, next).await {
        current = rotated;
    }
    let (next, _) = refreshable(alice, client, "fam");
    current = store
        .rotate_token(current.id, next)
        .await
        .expect("a new connection writes rotations")
        .expect("the token was not rotated before");

    // Dropped while idle: found out before the next batch, which succeeds.
    assert!(terminate_connections(&mut admin, &name).await >= 2);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let stored = store.insert_token(token_for(client)).await.unwrap();
    assert_eq!(
        store.find_token(&stored.access_token_hash).await.unwrap(),
        Some(stored)
    );
    let (next, _) = refreshable(alice, client, "fam");
    assert!(store
        .rotate_token(current.id, next)
        .await
        .unwrap()
        .is_some());
}
