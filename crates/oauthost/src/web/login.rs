//! `/login/` and `/logout/`.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    Extension,
};
use minijinja::context;
use oauthost_core::params::Params;

use super::{
    forms,
    responses::{self, common, failure_page, page, WithStatus},
    security::Connection,
    session::{Session, CSRF_FIELD},
    WebState,
};
use crate::server::{LoginOutcome, ServerError};

/// `next` if it is a path on this site, else the default: no open redirect.
pub(crate) fn safe_next(next: Option<&str>, default: &str) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_owned()
        }
        _ => default.to_owned(),
    }
}

struct LoginForm<'a> {
    username: &'a str,
    next: &'a str,
    error: Option<String>,
}

fn login_page(
    state: &WebState,
    session: &mut Session,
    status: StatusCode,
    form: LoginForm<'_>,
) -> Response {
    let common = common(state, session, "Log in");
    page(
        state,
        status,
        "login",
        context! {
            action => state.path("/login/"),
            next => form.next,
            username => form.username,
            error => form.error,
            ..common
        },
    )
}

/// `GET /login/`: the login form.
pub(crate) async fn show(
    State(state): State<WebState>,
    mut session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let params = forms::query(query.as_deref()).unwrap_or_default();
    let next = safe_next(params.get("next").ok().flatten(), &state.path("/login/"));
    let response = login_page(
        &state,
        &mut session,
        StatusCode::OK,
        LoginForm {
            username: "",
            next: &next,
            error: None,
        },
    );
    session.respond(&state, response).await
}

/// `POST /login/`: checks the CSRF token, the throttle, then the credentials.
pub(crate) async fn submit(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    mut session: Session,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = match checked_form(&state, &mut session, &headers, body) {
        Ok(params) => match log_in(&state, &mut session, connection, &params).await {
            Ok(response) => response,
            Err(error) => return failure_page(error),
        },
        Err(response) => response,
    };
    session.respond(&state, response).await
}

/// The parameters of a form posted with this session's CSRF token, or the page refusing it.
pub(crate) fn checked_form(
    state: &WebState,
    session: &mut Session,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, Response> {
    let params = forms::form_body(headers, body).map_err(|(status, error)| {
        responses::authorize_error_page(state, session, &error).with_status(status)
    })?;
    check_csrf(state, session, &params)?;
    Ok(params)
}

/// Refuses, with a 403 page, a form that does not carry this session's CSRF token.
pub(crate) fn check_csrf(
    state: &WebState,
    session: &mut Session,
    params: &Params,
) -> Result<(), Response> {
    if session.csrf_matches(params.get(CSRF_FIELD).ok().flatten()) {
        Ok(())
    } else {
        Err(responses::forbidden_page(
            state,
            session,
            "CSRF verification failed: reload the page and try again.",
        ))
    }
}

async fn log_in(
    state: &WebState,
    session: &mut Session,
    connection: Connection,
    params: &Params,
) -> Result<Response, ServerError> {
    let server = &state.server;
    let username = params.get("username")?.unwrap_or_default();
    let password = params.get("password")?.unwrap_or_default();
    let next = safe_next(params.get("next")?, &state.path("/login/"));
    match server
        .log_in(username, password, connection.client_addr)
        .await?
    {
        LoginOutcome::Locked { minutes } => Ok(login_page(
            state,
            session,
            StatusCode::TOO_MANY_REQUESTS,
            LoginForm {
                username,
                next: &next,
                error: Some(format!(
                    "Too many failed login attempts. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
            },
        )),
        LoginOutcome::Success(user) => {
            let credentials = server.store().find_user_credentials(&user.username).await?;
            let password_hash = credentials.and_then(|(_, hash)| hash);
            session.log_in(user.id, &user.username, password_hash.as_deref());
            tracing::info!(user = %user.username, "logged in");
            Ok(responses::found(&next))
        }
        LoginOutcome::Failed => Ok(login_page(
            state,
            session,
            StatusCode::OK,
            LoginForm {
                username,
                next: &next,
                error: Some("Please enter a correct username and password.".into()),
            },
        )),
    }
}

/// `GET /logout/`: a button to log out.
pub(crate) async fn confirm_logout(
    State(state): State<WebState>,
    mut session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let params = forms::query(query.as_deref()).unwrap_or_default();
    let next = safe_next(params.get("next").ok().flatten(), &state.path("/login/"));
    let common = common(&state, &mut session, "Log out");
    let response = page(
        &state,
        StatusCode::OK,
        "logout",
        context! { action => state.path("/logout/"), next => next, ..common },
    );
    session.respond(&state, response).await
}

/// `POST /logout/`: ends the session.
pub(crate) async fn logout(
    State(state): State<WebState>,
    mut session: Session,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = match checked_form(&state, &mut session, &headers, body) {
        Ok(params) => {
            session.log_out();
            let next = safe_next(params.get("next").ok().flatten(), &state.path("/login/"));
            responses::found(&next)
        }
        Err(response) => response,
    };
    session.respond(&state, response).await
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(
            safe_next(Some("/auth/?client_id=1"), "/"),
            "/auth/?client_id=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "javascript:x",
        ] {
            assert_eq!(safe_next(Some(bad), "/"), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/login/"), "/login/");
    }
}
