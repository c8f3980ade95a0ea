use axum::{extract::Path, routing::get, Router};
use oauthost::{oauth_required, server::Oauthost, web::bearer::Authorized};

#[oauth_required(scope = "my_polls:my_stats")]
async fn stats(Path(id): Path<i64>) -> String {
    format!("stats of {id}")
}

#[oauth_required(scope_auto)]
async fn results(user: Authorized) -> String {
    format!("results for {:?}", user.username())
}

#[oauth_required(scope_auto, app = "polls")]
pub async fn index() -> &'static str {
    "index"
}

#[oauth_required]
async fn anyone() -> &'static str {
    "hello"
}

fn router(oauthost: Oauthost) -> Router {
    Router::new()
        .route("/stats/{id}", get(stats))
        .route("/results", get(results))
        .route("/", get(index))
        .route("/anyone", get(anyone))
        .with_state(oauthost)
}

fn main() {
    let _ = router;
}
