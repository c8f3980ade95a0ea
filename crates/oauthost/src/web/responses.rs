//! Building responses: pages, JSON errors and redirects. The one place where errors
//! become HTTP.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json,
};
use minijinja::{context, Value};
use oauthost_core::error::{ErrorCode, OAuthError};
use serde::Serialize;

use super::{security::add_page_headers, session::Session, WebState};
use crate::server::{ClientRedirect, ServerError};

/// Changing the status of a built response.
pub(crate) trait WithStatus {
    /// The response with `status`.
    fn with_status(self, status: StatusCode) -> Response;
}

impl WithStatus for Response {
    fn with_status(mut self, status: StatusCode) -> Response {
        *self.status_mut() = status;
        self
    }
}

/// The variables every page gets: title, user, CSRF token.
pub(crate) fn common(state: &WebState, session: &mut Session, title: &str) -> Value {
    let token = session.csrf_token();
    context! {
        oauthost_title => title,
        user => session.user().map(|(_, name)| name.to_owned()),
        csrf_token => token.clone(),
        csrf_input => Value::from_safe_string(format!(
            r#"<input type="hidden" name="{}" value="{token}">"#,
            super::session::CSRF_FIELD
        )),
        debug => state.server.settings().debug,
    }
}

/// Page `name` rendered with `context`, with the page security headers.
pub(crate) fn page(state: &WebState, status: StatusCode, name: &str, context: Value) -> Response {
    match state.server.templates().render(name, context) {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            add_page_headers(response.headers_mut());
            response
        }
        Err(error) => {
            tracing::error!(template = name, %error, "a template failed to render");
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered",
            )
                .into_response();
            add_page_headers(response.headers_mut());
            response
        }
    }
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    let mut response = Json(value).into_response();
    no_store(&mut response);
    response
}

/// The status an OAuth error is sent with.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A JSON error (RFC 6749 §5.2). With `basic_realm`, an `invalid_client` answer invites
/// HTTP Basic authentication.
pub(crate) fn json_error(error: &OAuthError, basic_realm: Option<&str>) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        error_description: &'a str,
    }
    let mut response = json(&Body {
        error: error.code.as_str(),
        error_description: &error.description,
    })
    .with_status(status_of(error.code));
    if let (ErrorCode::InvalidClient, Some(realm)) = (error.code, basic_realm) {
        if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// The error to tell a client: the request's own fault as is, the server's failures as a
/// bare `server_error` (logged here with their cause, never shown).
pub(crate) fn to_oauth_error(error: ServerError) -> OAuthError {
    match error {
        ServerError::OAuth(error) => error,
        other => {
            tracing::error!(error = %other, "request failed");
            OAuthError::server_error()
        }
    }
}

/// A `302 Found` to `location`.
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            add_page_headers(response.headers_mut());
            response
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Sends the browser back to the client: a `302`, or the `authorize_proceed` page for a
/// client that cannot take a `#` in a `Location` header.
pub(crate) fn to_client(
    state: &WebState,
    session: &mut Session,
    redirect: &ClientRedirect,
    client_title: &str,
) -> Response {
    if redirect.needs_proceed_page() {
        let common = common(state, session, "Continue");
        page(
            state,
            StatusCode::OK,
            "authorize_proceed",
            context! { action => redirect.url, client => context! { title => client_title }, ..common },
        )
    } else {
        found(&redirect.url)
    }
}

/// The `authorize_error` page for an error that cannot be redirected.
pub(crate) fn authorize_error_page(
    state: &WebState,
    session: &mut Session,
    error: &OAuthError,
) -> Response {
    let common = common(state, session, "Authorization error");
    page(
        state,
        status_of(error.code),
        "authorize_error",
        context! { error => error.code.as_str(), error_description => error.description, ..common },
    )
}

/// The `forbidden` page.
pub(crate) fn forbidden_page(state: &WebState, session: &mut Session, message: &str) -> Response {
    let common = common(state, session, "Forbidden");
    page(
        state,
        StatusCode::FORBIDDEN,
        "forbidden",
        context! { message => message, ..common },
    )
}

/// A bare page for a request that failed before a session was at hand: the request's own
/// fault as a 400, the server's as a 500 (logged, cause not shown).
pub(crate) fn failure_page(error: ServerError) -> Response {
    let error = to_oauth_error(error);
    let mut response = (
        status_of(error.code),
        Html(format!(
            "<!doctype html><title>Error</title><p>{}</p>",
            minijinja::HtmlEscape(&error.description)
        )),
    )
        .into_response();
    add_page_headers(response.headers_mut());
    response
}
