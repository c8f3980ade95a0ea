//! The axum layer: turns HTTP requests into calls of the [`Oauthost`] logic and its results
//! into responses.
//!
//! [`Oauthost::router`] gives the router an application merges into its own (the seed's
//! `urlpatterns += oauthost_urlpatterns`): `/auth/`, `/token/`, `/login/`, `/logout/`,
//! `/revoke/`, `/introspect/` and `/.well-known/oauth-authorization-server`, under
//! [`Settings::mount_path`](crate::server::Settings::mount_path) when one is set.
//!
//! Unless in debug mode, every one of them refuses plain http with 403 "OAuth 2.0 requires
//! secure connection". Serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that login throttling can see
//! client addresses.

// In the HTTP layer a refusal *is* a response: returning it as the error is the point.
#![allow(clippy::result_large_err)]

mod admin;
mod authorize;
pub mod bearer;
mod forms;
mod health;
mod login;
mod metadata;
mod responses;
mod security;
mod session;
mod templates;
mod token;

use axum::{
    extract::DefaultBodyLimit,
    middleware::from_fn_with_state,
    routing::{get, post},
    Router,
};
pub use health::router as health_router;
pub use templates::{TemplateError, Templates, TEMPLATE_NAMES};

use crate::server::Oauthost;

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct WebState {
    server: Oauthost,
}

impl WebState {
    /// `path` under the mount path.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.server.settings().mount_path)
    }
}

impl Oauthost {
    /// The authorization server's routes, rendered with its [`Templates`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use oauthost::server::Oauthost;
    ///
    /// let store = oauthost::store::connect("sqlite::memory:").await?;
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "my app" }))
    ///     .merge(Oauthost::new(store).router());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn router(&self) -> Router {
        let endpoints = Router::new()
            .route("/auth/", get(authorize::get).post(authorize::post))
            .route("/token/", post(token::token))
            .route("/revoke/", post(token::revoke))
            .route("/introspect/", post(token::introspect))
            .route("/login/", get(login::show).post(login::submit))
            .route("/logout/", get(login::confirm_logout).post(login::logout));
        let mount = self.settings().mount_path.trim_end_matches('/').to_owned();
        let metadata = Router::new().route(
            &format!("/.well-known/oauth-authorization-server{mount}"),
            get(metadata::metadata),
        );
        self.finish(endpoints, metadata)
    }

    /// The admin site at `/admin/` (under the mount path), for active staff users: scopes,
    /// clients with their redirect endpoints, authorization codes, tokens and users.
    /// It relies on [`router`](Self::router)'s `/login/`, so merge both.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use oauthost::server::Oauthost;
    ///
    /// let store = oauthost::store::connect("sqlite::memory:").await?;
    /// let server = Oauthost::new(store);
    /// let app = axum::Router::new()
    ///     .merge(server.router())
    ///     .merge(server.admin_router());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn admin_router(&self) -> Router {
        self.finish(admin::routes(), Router::new())
    }

    fn web_state(&self) -> WebState {
        WebState {
            server: self.clone(),
        }
    }

    /// `routes` under the mount path and `root` at the root, with the body limit and the
    /// https check.
    fn finish(&self, routes: Router<WebState>, root: Router<WebState>) -> Router {
        let state = self.web_state();
        let mount = self.settings().mount_path.trim_end_matches('/').to_owned();
        let routes = if mount.is_empty() {
            routes
        } else {
            Router::new().nest(&mount, routes)
        };
        routes
            .merge(root)
            .layer(DefaultBodyLimit::max(forms::MAX_BODY_BYTES))
            .layer(from_fn_with_state(
                state.clone(),
                security::require_secure_connection,
            ))
            .with_state(state)
    }
}
