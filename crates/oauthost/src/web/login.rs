//! `/login/` and `/logout/`.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use oauthost_core::params::Params;

use super::{
    forms,
    responses::{self, common, page, WithStatus},
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

pub(crate) use responses::failure_page as failure;

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
    Extension(connection): Extension<Connection>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let mut session = match Session::load(&state.server, &jar).await {
        Ok(session) => session,
        Err(error) => return failure(error),
    };
    let params = forms::query(query.as_deref()).unwrap_or_default();
    let next = safe_next(params.get("next").ok().flatten(), "/");
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
    finish(&state, session, jar, connection, response).await
}

/// Saves the session and attaches its cookie to `response`.
pub(crate) async fn finish(
    state: &WebState,
    session: Session,
    jar: CookieJar,
    connection: Connection,
    response: Response,
) -> Response {
    match session.save(&state.server, jar, connection.secure).await {
        Ok(jar) => (jar, response).into_response(),
        Err(error) => failure(error),
    }
}

/// `POST /login/`: checks the CSRF token, the throttle, then the credentials.
pub(crate) async fn submit(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut session = match Session::load(&state.server, &jar).await {
        Ok(session) => session,
        Err(error) => return failure(error),
    };
    let params = match forms::form_body(&headers, body) {
        Ok(params) => params,
        Err((status, error)) => {
            return responses::authorize_error_page(&state, &mut session, &error)
                .with_status(status)
        }
    };
    if !session.csrf_matches(params.get(CSRF_FIELD).ok().flatten()) {
        let response = responses::forbidden_page(
            &state,
            &mut session,
            "CSRF verification failed: reload the page and try again.",
        );
        return finish(&state, session, jar, connection, response).await;
    }
    let response = match log_in(&state, &mut session, connection, &params).await {
        Ok(response) => response,
        Err(error) => return failure(error),
    };
    finish(&state, session, jar, connection, response).await
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
    let next = safe_next(params.get("next")?, "/");
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
            session.log_in(user.id, &user.username);
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
    Extension(connection): Extension<Connection>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let mut session = match Session::load(&state.server, &jar).await {
        Ok(session) => session,
        Err(error) => return failure(error),
    };
    let params = forms::query(query.as_deref()).unwrap_or_default();
    let next = safe_next(params.get("next").ok().flatten(), &state.path("/login/"));
    let common = common(&state, &mut session, "Log out");
    let response = page(
        &state,
        StatusCode::OK,
        "logout",
        context! { action => state.path("/logout/"), next => next, ..common },
    );
    finish(&state, session, jar, connection, response).await
}

/// `POST /logout/`: ends the session.
pub(crate) async fn logout(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut session = match Session::load(&state.server, &jar).await {
        Ok(session) => session,
        Err(error) => return failure(error),
    };
    let params = forms::form_body(&headers, body).unwrap_or_default();
    if !session.csrf_matches(params.get(CSRF_FIELD).ok().flatten()) {
        let response = responses::forbidden_page(
            &state,
            &mut session,
            "CSRF verification failed: reload the page and try again.",
        );
        return finish(&state, session, jar, connection, response).await;
    }
    session.log_out();
    let next = safe_next(params.get("next").ok().flatten(), &state.path("/login/"));
    finish(&state, session, jar, connection, responses::found(&next)).await
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
