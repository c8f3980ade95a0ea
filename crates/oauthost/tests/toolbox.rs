//! `register_client`, `create_user` and the authenticator, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use async_trait::async_trait;
use oauthost::{
    auth::{AuthError, Authenticator, StoreAuthenticator},
    store::{self, DynStore, NewUser, StoreError, User},
    toolbox::{self, ClientRegistration, ToolboxError},
};
use oauthost_core::{
    client::{ClientType, GrantType},
    clock::{Clock, SystemClock},
    password::PasswordError,
    redirect::RedirectUriError,
    scope::ScopeIdError,
};
use oauthost_testkit::{backend_tests, TestDatabase};

async fn open_with_alice(db: &TestDatabase) -> DynStore {
    let store = store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    toolbox::create_user(&*store, "alice", "correct horse", true)
        .await
        .unwrap();
    store
}

async fn snapshot(store: &DynStore) -> (usize, usize, usize) {
    (
        store.list_clients().await.unwrap().len(),
        store.list_scopes().await.unwrap().len(),
        store.list_users().await.unwrap().len(),
    )
}

async fn registers_a_public_client_as_the_seed_does(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let registered = toolbox::register_client(
        &*store,
        ClientRegistration::new("My OAuth Client", "alice")
            .identifier("1234")
            .redirect_uri("https://myapp.com/")
            .scopes(["polls:vote", "polls:stats"]),
    )
    .await
    .unwrap();
    let client = &registered.client;
    assert_eq!(client.identifier, "1234");
    assert_eq!(client.client_type, ClientType::Public);
    assert_eq!(client.token_lifetime, 3600);
    assert!(client.hash_sign_supported);
    assert!(GrantType::ALL.iter().all(|g| client.grant_types.allows(*g)));
    assert!(registered.secret.is_none() && client.secret_hash.is_none());
    let scopes: Vec<_> = store
        .client_scopes(client.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.identifier.to_string())
        .collect();
    assert_eq!(scopes, ["polls:stats", "polls:vote"]);
    assert_eq!(
        store.redirect_uris(client.id).await.unwrap(),
        ["https://myapp.com/"]
    );
}

async fn confidential_clients_get_a_hashed_256_bit_secret(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let registered = toolbox::register_client(
        &*store,
        ClientRegistration::new("Backend", "alice").public(false),
    )
    .await
    .unwrap();
    assert!(
        registered.client.identifier.len() >= 32,
        "generated identifier: {}",
        registered.client.identifier
    );
    let secret = registered.secret.unwrap();
    assert!(secret.expose().len() >= 43, "256 bits in base64url");
    let stored = store
        .find_client(&registered.client.identifier)
        .await
        .unwrap()
        .unwrap()
        .secret_hash
        .unwrap();
    assert!(stored.matches(secret.expose()));
    assert_ne!(stored.as_bytes(), secret.expose().as_bytes());

    let chosen = toolbox::register_client(
        &*store,
        ClientRegistration::new("Chosen", "alice")
            .public(false)
            .secret("my own secret"),
    )
    .await
    .unwrap();
    assert!(chosen.client.secret_hash.unwrap().matches("my own secret"));
}

/// Recognises the error a bad registration must give.
type Expected = fn(&ToolboxError) -> bool;

async fn bad_registrations_are_refused_and_write_nothing(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    toolbox::register_client(
        &*store,
        ClientRegistration::new("Taken", "alice").identifier("taken"),
    )
    .await
    .unwrap();
    let before = snapshot(&store).await;
    let base = || ClientRegistration::new("Fresh", "alice").scopes(["fresh:scope"]);

    let cases: Vec<(ClientRegistration, Expected)> = vec![
        (
            ClientRegistration::new("Taken", "alice").scopes(["fresh:scope"]),
            |e| {
                matches!(
                    e,
                    ToolboxError::Store(StoreError::Duplicate {
                        what: "client title",
                        ..
                    })
                )
            },
        ),
        (base().identifier("taken"), |e| {
            matches!(
                e,
                ToolboxError::Store(StoreError::Duplicate {
                    what: "client identifier",
                    ..
                })
            )
        }),
        (
            ClientRegistration::new("Fresh", "nobody"),
            |e| matches!(e, ToolboxError::UnknownUser(name) if name == "nobody"),
        ),
        (
            base()
                .scopes(["missing:one"])
                .register_unknown_scopes(false),
            |e| {
                matches!(
                    e,
                    ToolboxError::Store(StoreError::NotFound { what: "scope", .. })
                )
            },
        ),
        (base().redirect_uri("javascript:alert(1)"), |e| {
            matches!(
                e,
                ToolboxError::RedirectUri(RedirectUriError::ForbiddenScheme(_))
            )
        }),
        (base().redirect_uri("http://myapp.com/"), |e| {
            matches!(
                e,
                ToolboxError::RedirectUri(RedirectUriError::InsecureHttp(_))
            )
        }),
        (base().redirect_uri("https://myapp.com/#frag"), |e| {
            matches!(e, ToolboxError::RedirectUri(RedirectUriError::Fragment(_)))
        }),
        (base().scopes(["has space"]), |e| {
            matches!(e, ToolboxError::ScopeId(ScopeIdError::BadCharacter { .. }))
        }),
        (base().scopes(["x".repeat(101)]), |e| {
            matches!(e, ToolboxError::ScopeId(ScopeIdError::TooLong(101)))
        }),
        (base().token_lifetime(0), |e| {
            matches!(e, ToolboxError::TokenLifetime(0))
        }),
        (base().token_lifetime(u64::MAX), |e| {
            matches!(e, ToolboxError::TokenLifetime(_))
        }),
        (base().secret("public clients have none"), |e| {
            matches!(e, ToolboxError::SecretForPublicClient)
        }),
        (ClientRegistration::new("  ", "alice"), |e| {
            matches!(e, ToolboxError::Empty("client title"))
        }),
        (base().identifier("has space"), |e| {
            matches!(e, ToolboxError::InvalidClientIdentifier(_))
        }),
        (base().link("javascript:alert(1)"), |e| {
            matches!(e, ToolboxError::InvalidLink(_))
        }),
        (base().grant_types([]), |e| {
            matches!(e, ToolboxError::NoGrantType)
        }),
    ];
    for (registration, expected) in cases {
        let description = format!("{registration:?}");
        let error = toolbox::register_client(&*store, registration)
            .await
            .unwrap_err();
        assert!(expected(&error), "{description}\ngave {error:?}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(snapshot(&store).await, before, "nothing was written");
}

async fn debug_mode_accepts_plain_http_and_flags_it(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let registered = toolbox::register_client(
        &*store,
        ClientRegistration::new("Dev", "alice")
            .redirect_uri("http://myapp.com/")
            .redirect_uri("http://localhost:8080/cb")
            .allow_insecure_http(true),
    )
    .await
    .unwrap();
    assert_eq!(registered.insecure_redirect_uris, ["http://myapp.com/"]);
}

async fn bad_users_are_refused(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let before = snapshot(&store).await;
    let duplicate = toolbox::create_user(&*store, "alice", "x", false).await;
    assert!(matches!(
        duplicate,
        Err(ToolboxError::Store(StoreError::Duplicate {
            what: "username",
            ..
        }))
    ));
    let empty = toolbox::create_user(&*store, "bob", "", false).await;
    assert!(matches!(
        empty,
        Err(ToolboxError::Password(PasswordError::Empty))
    ));
    let malformed = toolbox::create_user(&*store, "bob smith", "pw", false).await;
    assert!(matches!(malformed, Err(ToolboxError::InvalidUsername(_))));
    assert_eq!(snapshot(&store).await, before);
}

async fn scopes_get_readable_default_titles(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let scope = toolbox::add_scope(&*store, "polls:results", None, true)
        .await
        .unwrap();
    assert_eq!(scope.title, "Polls Results");
    let titled = toolbox::add_scope(&*store, "polls:vote", Some("Vote in polls"), false)
        .await
        .unwrap();
    assert_eq!(titled.title, "Vote in polls");
    assert!(!titled.enabled);
    assert!(matches!(
        toolbox::add_scope(&*store, "polls:results", None, true).await,
        Err(ToolboxError::Store(StoreError::Duplicate { .. }))
    ));
}

async fn store_authenticator_checks_passwords(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    store
        .create_user(
            NewUser {
                username: "gone".into(),
                password_hash: Some(oauthost_core::password::hash("pw").unwrap()),
                is_staff: false,
                is_active: false,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    let auth = StoreAuthenticator::new(store.clone(), 2);
    let alice = auth.authenticate("alice", "correct horse").await.unwrap();
    assert_eq!(alice.map(|u| u.username).as_deref(), Some("alice"));
    assert!(auth
        .authenticate("alice", "wrong horse")
        .await
        .unwrap()
        .is_none());
    assert!(auth
        .authenticate("nobody", "correct horse")
        .await
        .unwrap()
        .is_none());
    assert!(
        auth.authenticate("gone", "pw").await.unwrap().is_none(),
        "inactive users cannot log in"
    );
}

/// An application that keeps its own users: it checks the password itself and maps the
/// user onto an oauthost user, created on first login.
struct AppDirectory {
    store: DynStore,
}

#[async_trait]
impl Authenticator for AppDirectory {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        if !(username == "ext-carol" && password == "from the app's own table") {
            return Ok(None);
        }
        if let Some(user) = self.store.find_user(username).await? {
            return Ok(Some(user));
        }
        let new = NewUser {
            username: username.into(),
            password_hash: None,
            is_staff: false,
            is_active: true,
        };
        Ok(Some(self.store.create_user(new, SystemClock.now()).await?))
    }
}

async fn an_application_can_plug_in_its_own_authentication(db: &TestDatabase) {
    let store = open_with_alice(db).await;
    let auth: Box<dyn Authenticator> = Box::new(AppDirectory {
        store: store.clone(),
    });
    let first = auth
        .authenticate("ext-carol", "from the app's own table")
        .await
        .unwrap()
        .unwrap();
    let second = auth
        .authenticate("ext-carol", "from the app's own table")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, second.id, "provisioned once");
    // The provisioned user has no local password: the built-in check never accepts it.
    let builtin = StoreAuthenticator::new(store.clone(), 1);
    assert!(builtin
        .authenticate("ext-carol", "")
        .await
        .unwrap()
        .is_none());
    // And it can own clients like any user.
    toolbox::register_client(&*store, ClientRegistration::new("Carol's app", "ext-carol"))
        .await
        .unwrap();
}

backend_tests!(
    registers_a_public_client_as_the_seed_does,
    confidential_clients_get_a_hashed_256_bit_secret,
    bad_registrations_are_refused_and_write_nothing,
    debug_mode_accepts_plain_http_and_flags_it,
    bad_users_are_refused,
    scopes_get_readable_default_titles,
    store_authenticator_checks_passwords,
    an_application_can_plug_in_its_own_authentication,
);
