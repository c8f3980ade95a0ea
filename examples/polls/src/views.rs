//! The polls views, each protected with `#[oauth_required]`.

use axum::{
    body::Bytes,
    extract::{FromRef, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use oauthost::{
    core::params::Params,
    oauth_required,
    server::Oauthost,
    web::bearer::{Authorized, BearerLayer},
};
use serde::{ser::SerializeMap, Serialize, Serializer};
use serde_json::json;

use crate::db::{Polls, VoteError};

/// What the views share.
#[derive(Clone)]
struct PollsState {
    oauthost: Oauthost,
    polls: Polls,
}

impl FromRef<PollsState> for Oauthost {
    fn from_ref(state: &PollsState) -> Self {
        state.oauthost.clone()
    }
}

/// The polls routes, under `/polls/`.
pub fn router(oauthost: Oauthost, polls: Polls) -> Router {
    Router::new()
        .route("/polls/", get(index))
        .route("/polls/{id}/", get(detail))
        .route("/polls/{id}/results/", get(results))
        .route("/polls/{id}/stats/", get(stats))
        .route("/polls/{id}/vote/", post(vote))
        // Lets clients send their token as `access_token` in a form body too.
        .layer(BearerLayer::form_tokens())
        .with_state(PollsState { oauthost, polls })
}

/// A JSON error.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `{"user": <username>, <key>: <value>}`, or 404 when there is no value.
fn answer<T: Serialize>(user: &Authorized, key: &str, value: Option<T>) -> Response {
    match value {
        Some(value) => Json(Answer {
            user: user.username(),
            key,
            value,
        })
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "No such poll"),
    }
}

/// What [`answer`] writes, serialized without building a JSON tree first.
struct Answer<'a, T> {
    user: Option<&'a str>,
    key: &'a str,
    value: T,
}

impl<T: Serialize> Serialize for Answer<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("user", &self.user)?;
        map.serialize_entry(self.key, &self.value)?;
        map.end()
    }
}

fn failed(problem: sqlx::Error) -> Response {
    eprintln!("polls: database error: {problem}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The polls database failed",
    )
}

/// `GET /polls/`: every poll.
#[oauth_required(scope_auto)]
async fn index(State(state): State<PollsState>, user: Authorized) -> Response {
    match state.polls.list().await {
        Ok(polls) => answer(&user, "polls", Some(&*polls)),
        Err(problem) => failed(problem),
    }
}

/// `GET /polls/{id}/`: a poll and its choices.
#[oauth_required(scope_auto)]
async fn detail(
    State(state): State<PollsState>,
    user: Authorized,
    Path(id): Path<i64>,
) -> Response {
    match state.polls.detail(id).await {
        Ok(poll) => answer(&user, "poll", poll.as_deref()),
        Err(problem) => failed(problem),
    }
}

/// `GET /polls/{id}/results/`: the votes per choice.
#[oauth_required(scope_auto)]
async fn results(
    State(state): State<PollsState>,
    user: Authorized,
    Path(id): Path<i64>,
) -> Response {
    match state.polls.results(id).await {
        Ok(poll) => answer(&user, "poll", poll),
        Err(problem) => failed(problem),
    }
}

/// `GET /polls/{id}/stats/`: totals, under a scope named by hand, as in the seed.
#[oauth_required(scope = "my_polls:my_stats")]
async fn stats(State(state): State<PollsState>, user: Authorized, Path(id): Path<i64>) -> Response {
    match state.polls.stats(id).await {
        Ok(poll) => answer(&user, "stats", poll),
        Err(problem) => failed(problem),
    }
}

/// `POST /polls/{id}/vote/` with `choice=<choice id>`: records a vote and answers the
/// updated results.
#[oauth_required(scope_auto)]
async fn vote(
    State(state): State<PollsState>,
    user: Authorized,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let choice = match Params::parse(&body).and_then(|p| p.require("choice").map(str::to_owned)) {
        Ok(choice) => choice,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem.description),
    };
    let Ok(choice) = choice.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, "choice must be a choice id");
    };
    let username = user.username().unwrap_or_default();
    let at = state.oauthost.now().unix_timestamp();
    match state.polls.vote(id, choice, username, at).await {
        Ok(Ok(())) => match state.polls.results(id).await {
            Ok(poll) => answer(&user, "poll", poll),
            Err(problem) => failed(problem),
        },
        Ok(Err(VoteError::UnknownPoll)) => error(StatusCode::NOT_FOUND, "No such poll"),
        Ok(Err(VoteError::NotAChoice)) => error(
            StatusCode::BAD_REQUEST,
            "That choice is not one of this poll's",
        ),
        Err(problem) => failed(problem),
    }
}
