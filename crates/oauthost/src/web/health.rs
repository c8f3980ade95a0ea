//! `GET /healthz`: whether the server and its database answer, for load balancers.

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};

use crate::store::DynStore;

/// `GET /healthz` over `store`.
pub fn router(store: DynStore) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .with_state(store)
}

async fn health(State(store): State<DynStore>) -> (StatusCode, Json<Value>) {
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": store.backend().to_string() })),
        ),
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": store.backend().to_string() })),
            )
        }
    }
}
