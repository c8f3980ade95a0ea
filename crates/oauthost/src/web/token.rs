//! `/token/`, `/revoke/` and `/introspect/`: the endpoints clients call directly.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use oauthost_core::{error::OAuthError, params::Params};
use serde::Serialize;

use super::{forms, responses, security::Connection, WebState};
use crate::server::{ClientCredentials, ServerError};

/// A client's request: its parameters and credentials, read and checked.
struct ClientRequest {
    params: Params,
    credentials: ClientCredentials,
}

/// Reads a client's request, or the error response to send instead.
fn read(
    state: &WebState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<ClientRequest, Box<Response>> {
    let realm = state.server.settings().realm.clone();
    let query = forms::query(query).map_err(|e| Box::new(responses::json_error(&e, None)))?;
    if query.contains("client_secret") || query.contains("password") {
        return Err(Box::new(responses::json_error(
            &OAuthError::invalid_request("Credentials must not be sent in the query string"),
            None,
        )));
    }
    let params = forms::form_body(headers, body).map_err(|(status, error)| {
        use responses::WithStatus;
        Box::new(responses::json_error(&error, None).with_status(status))
    })?;
    let basic = forms::basic_credentials(headers)
        .map_err(|e| Box::new(responses::json_error(&e, Some(&realm))))?;
    let field = |name: &str| params.get(name).map(|v| v.map(str::to_owned));
    let credentials = ClientCredentials {
        basic,
        body_id: field("client_id").map_err(|e| Box::new(responses::json_error(&e, None)))?,
        body_secret: field("client_secret")
            .map_err(|e| Box::new(responses::json_error(&e, None)))?,
    };
    Ok(ClientRequest {
        params,
        credentials,
    })
}

/// The response to a failed client request.
fn refuse(state: &WebState, credentials: &ClientCredentials, error: ServerError) -> Response {
    let error = responses::to_oauth_error(error);
    let realm = credentials
        .used_basic()
        .then_some(state.server.settings().realm.as_str());
    responses::json_error(&error, realm)
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: String,
}

/// `POST /token/`.
pub(crate) async fn token(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match read(&state, &headers, query.as_deref(), body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match state
        .server
        .token(
            &request.params,
            &request.credentials,
            connection.client_addr,
        )
        .await
    {
        Ok(issued) => responses::json(&TokenResponse {
            access_token: issued.access_token.expose(),
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token.as_ref().map(|t| t.expose()),
            scope: issued.scope.to_string(),
        }),
        Err(error) => refuse(&state, &request.credentials, error),
    }
}

/// `POST /revoke/` (RFC 7009): 200 with an empty body, also for unknown tokens.
pub(crate) async fn revoke(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match read(&state, &headers, query.as_deref(), body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match state
        .server
        .revoke(&request.params, &request.credentials)
        .await
    {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => refuse(&state, &request.credentials, error),
    }
}

/// `POST /introspect/` (RFC 7662).
pub(crate) async fn introspect(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match read(&state, &headers, query.as_deref(), body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match state
        .server
        .introspect(&request.params, &request.credentials)
        .await
    {
        Ok(introspection) => responses::json(&introspection),
        Err(error) => refuse(&state, &request.credentials, error),
    }
}
