//! `/token/`, `/revoke/` and `/introspect/`: the endpoints clients call directly.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use oauthost_core::{error::OAuthError, params::Params};
use serde::Serialize;

use super::{
    forms,
    responses::{self, WithStatus},
    security::Connection,
    WebState,
};
use crate::server::{ClientCredentials, ServerError};

/// A client's request to a token-style endpoint: its parameters and credentials, read and
/// checked; as an extractor, it answers malformed requests with a JSON error.
pub(crate) struct ClientRequest {
    params: Params,
    credentials: ClientCredentials,
}

impl FromRequest<WebState> for ClientRequest {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await;
        let realm = state.server.settings().realm.clone();
        let query = forms::query(parts.uri.query()).map_err(|e| responses::json_error(&e, None))?;
        if query.contains("client_secret") || query.contains("password") {
            return Err(responses::json_error(
                &OAuthError::invalid_request("Credentials must not be sent in the query string"),
                None,
            ));
        }
        let params = forms::form_body(&parts.headers, body)
            .map_err(|(status, error)| responses::json_error(&error, None).with_status(status))?;
        let basic = forms::basic_credentials(&parts.headers)
            .map_err(|e| responses::json_error(&e, Some(&realm)))?;
        let field = |name: &str| {
            params
                .get(name)
                .map(|v| v.map(str::to_owned))
                .map_err(|e| responses::json_error(&e, None))
        };
        let credentials = ClientCredentials {
            basic,
            body_id: field("client_id")?,
            body_secret: field("client_secret")?,
        };
        Ok(Self {
            params,
            credentials,
        })
    }
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
    request: ClientRequest,
) -> Response {
    let issued = state
        .server
        .token(
            &request.params,
            &request.credentials,
            connection.client_addr,
        )
        .await;
    match issued {
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
pub(crate) async fn revoke(State(state): State<WebState>, request: ClientRequest) -> Response {
    match state
        .server
        .revoke(&request.params, &request.credentials)
        .await
    {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => refuse(&state, &request.credentials, error),
    }
}

/// `POST /introspect/` (RFC 7662).
pub(crate) async fn introspect(State(state): State<WebState>, request: ClientRequest) -> Response {
    match state
        .server
        .introspect(&request.params, &request.credentials)
        .await
    {
        Ok(introspection) => responses::json(&introspection),
        Err(error) => refuse(&state, &request.credentials, error),
    }
}
