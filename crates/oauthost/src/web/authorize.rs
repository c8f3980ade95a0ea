//! `/auth/`: the authorization endpoint, with the consent page.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use minijinja::context;
use oauthost_core::{error::OAuthError, params::Params};
use url::form_urlencoded;

use super::{
    forms,
    login::check_csrf,
    responses::{self, common, page, WithStatus},
    security::Connection,
    session::{Pending, Session},
    WebState,
};
use crate::server::{AuthorizationRequest, AuthorizeError};

fn encode(params: &Params) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

/// `GET /auth/`: an authorization request in the query.
pub(crate) async fn get(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    mut session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let response = match forms::query(query.as_deref()) {
        Ok(params) => request(&state, &mut session, connection, params).await,
        Err(error) => responses::authorize_error_page(&state, &mut session, &error),
    };
    session.respond(&state, response).await
}

/// `POST /auth/`: the consent form's decision, or an authorization request in the body.
pub(crate) async fn post(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    mut session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = match forms::form_body(&headers, body) {
        Err((status, error)) => {
            responses::authorize_error_page(&state, &mut session, &error).with_status(status)
        }
        Ok(form) if form.contains("auth_decision") => {
            match check_csrf(&state, &mut session, &form) {
                Ok(()) => decision(&state, &mut session, query.as_deref(), &form).await,
                Err(response) => response,
            }
        }
        Ok(form) => request(&state, &mut session, connection, form).await,
    };
    session.respond(&state, response).await
}

/// Shows the error of a request that cannot go on: a page, or a redirect to the client.
fn refuse(state: &WebState, session: &mut Session, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Page(error) => responses::authorize_error_page(state, session, &error),
        AuthorizeError::Redirect { error, redirect } => {
            tracing::debug!(%error, "authorization request refused");
            responses::to_client(state, session, &redirect, "the application")
        }
        AuthorizeError::Internal(error) => {
            let error = responses::to_oauth_error(error);
            responses::authorize_error_page(state, session, &error)
        }
    }
}

async fn request(
    state: &WebState,
    session: &mut Session,
    connection: Connection,
    params: Params,
) -> Response {
    let request = match state.server.validate_authorization(&params).await {
        Ok(request) => request,
        Err(error) => {
            if let AuthorizeError::Page(page_error) = &error {
                tracing::warn!(
                    client_id = %params.get("client_id").ok().flatten().unwrap_or("").escape_debug(),
                    address = ?connection.client_addr,
                    error = %page_error,
                    "authorization request refused"
                );
            }
            return refuse(state, session, error);
        }
    };
    if session.user().is_none() {
        let next = format!("{}?{}", state.path("/auth/"), encode(&params));
        let login = format!(
            "{}?{}",
            state.path("/login/"),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &next)
                .finish()
        );
        return responses::found(&login);
    }
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let request_id = session.add_pending(owned);
    consent_page(state, session, &request, &request_id).await
}

async fn consent_page(
    state: &WebState,
    session: &mut Session,
    request: &AuthorizationRequest,
    request_id: &str,
) -> Response {
    let mut scopes = Vec::new();
    for identifier in request.scope.iter() {
        let title = match state.server.store().find_scope(identifier).await {
            Ok(Some(scope)) => scope.title,
            _ => identifier.default_title(),
        };
        scopes.push(context! { identifier => identifier.as_str(), title => title });
    }
    let client = &request.client;
    let common = common(state, session, "Authorization request");
    page(
        state,
        StatusCode::OK,
        "authorize",
        context! {
            action => state.path("/auth/"),
            client => context! {
                title => client.title,
                identifier => client.identifier,
                description => client.description,
                link => client.link,
            },
            scopes_obj => scopes.clone(),
            scopes => scopes,
            request_id => request_id,
            ..common
        },
    )
}

/// The consent form came back: checked against the session, used once.
async fn decision(
    state: &WebState,
    session: &mut Session,
    query: Option<&str>,
    form: &Params,
) -> Response {
    let Some((user_id, _)) = session.user() else {
        return responses::found(&state.path("/login/"));
    };
    let pending = match form.get("request_id").ok().flatten() {
        Some(id) => session.take_pending(|p: &Pending| p.id == id),
        // A template written for the seed posts back to the request's own URL.
        None => {
            let query = forms::query(query).unwrap_or_default();
            let wanted: Vec<(String, String)> = query
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            if wanted.is_empty() {
                None
            } else {
                session.take_pending(|p: &Pending| p.params == wanted)
            }
        }
    };
    let Some(pending) = pending else {
        let error = OAuthError::invalid_request(
            "This authorization request is no longer waiting for a decision: it was decided already or has expired",
        );
        return responses::authorize_error_page(state, session, &error)
            .with_status(StatusCode::BAD_REQUEST);
    };
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pending.params.iter())
        .finish();
    let params = Params::parse(encoded.as_bytes()).unwrap_or_default();
    let request = match state.server.validate_authorization(&params).await {
        Ok(request) => request,
        Err(error) => return refuse(state, session, error),
    };
    let approved = form.get("confirmed").ok().flatten() == Some("yes");
    let redirect = if approved {
        match state.server.approve(&request, user_id).await {
            Ok(redirect) => redirect,
            Err(error) => {
                let error = responses::to_oauth_error(error);
                return responses::authorize_error_page(state, session, &error);
            }
        }
    } else {
        state.server.decline(&request)
    };
    responses::to_client(state, session, &redirect, &request.client.title).into_response()
}
