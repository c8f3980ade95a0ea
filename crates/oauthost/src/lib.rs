//! # oauthost
//!
//! An OAuth 2.0 authorization server for [axum] applications, after the Django app
//! *django-oauthost*.
//!
//! The crate is laid out by layer:
//!
//! - [`store`]: storage behind async traits, with a SQLite backend (the embedded default)
//!   and a PostgreSQL backend, and the migrations that create the tables;
//! - [`toolbox`]: the operations an application or an operator performs: creating users
//!   and scopes, [`register_client`](toolbox::register_client);
//! - [`auth`]: checking a user's password, or plugging in an application's own;
//! - [`web`]: the axum routers;
//! - [`cli`]: the command line (`migrate`, `serve`, `user`, `scope`, `client`), as library
//!   code an application's own binary can reuse.
//!
//! The protocol rules themselves (scopes, redirect URIs, secrets, passwords) live in
//! [`oauthost_core`], which knows neither HTTP nor SQL.
//!
//! ## Quick start
//!
//! ```
//! use oauthost::{store, toolbox::{self, ClientRegistration}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // 1. Create the tables (the `migrate` command does the same).
//! let store = store::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//!
//! // 2. A user who registers clients.
//! toolbox::create_user(&*store, "alice", "a long passphrase", false).await?;
//!
//! // 3. Register a client restricted to two scopes, created on the fly.
//! let registered = toolbox::register_client(
//!     &*store,
//!     ClientRegistration::new("My OAuth Client", "alice")
//!         .identifier("1234")
//!         .redirect_uri("https://myapp.com/")
//!         .scopes(["polls:vote", "polls:stats"]),
//! )
//! .await?;
//! assert_eq!(registered.client.identifier, "1234");
//! assert_eq!(registered.scopes.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [axum]: https://docs.rs/axum

pub mod auth;
pub mod cli;
pub mod server;
pub mod store;
pub mod toolbox;
pub mod web;

pub use oauthost_core as core;
pub use oauthost_macros::oauth_required;

/// Declares the calling crate as an app, so that `syncscopes` knows it even before it has
/// protected handlers.
///
/// ```
/// oauthost::declare_app!();
/// ```
#[macro_export]
macro_rules! declare_app {
    () => {
        $crate::__private::inventory::submit! {
            $crate::web::bearer::DeclaredApp { name: ::core::env!("CARGO_CRATE_NAME") }
        }
    };
}

/// What the macros need; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// The README's Rust examples, compiled as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
