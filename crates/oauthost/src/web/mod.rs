//! The axum layer.
//!
//! Each web module exposes a function returning a [`Router`]; [`router`] merges them into
//! the one an application merges into its own (the seed's `urlpatterns += oauthost_urlpatterns`).

mod health;

use axum::Router;

use crate::store::DynStore;

/// Everything oauthost serves, over `store`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = oauthost::store::connect("sqlite::memory:").await?;
/// let app: axum::Router = axum::Router::new().merge(oauthost::web::router(store));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn router(store: DynStore) -> Router {
    health::router(store)
}
