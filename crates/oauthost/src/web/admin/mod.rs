//! The admin site (`/admin/`): operators manage scopes, clients, redirect endpoints,
//! authorization codes, tokens and users, as the seed's Django admin did.
//!
//! Pages are server-rendered from the `admin/*` templates and work without JavaScript. Only
//! active staff users get in; anyone else is sent to the login page. Every form carries the
//! session's CSRF token, every page the same security headers as the login page, and every
//! change is one store call, so one transaction.

mod clients;
mod dates;
mod fields;
mod listing;
mod scopes;
mod tokens;
mod users;

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, FromRequestParts, OriginalUri, State},
    http::{request::Parts, HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
    Router,
};
use minijinja::{context, value::merge_maps, Value};
use oauthost_core::params::Params;

use super::{
    login::checked_form,
    responses::{common, failure_page, found, page},
    session::Session,
    WebState,
};
use crate::store::User;

/// Rows per page of every listing.
pub(crate) const PER_PAGE: i64 = 50;

/// The admin routes, relative to the mount path.
pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/", get(index))
        .route("/admin/scopes/", get(scopes::list).post(scopes::bulk))
        .route(
            "/admin/scopes/add/",
            get(scopes::add_form).post(scopes::add),
        )
        .route("/admin/scopes/delete/", post(scopes::delete))
        .route(
            "/admin/scopes/{id}/",
            get(scopes::edit_form).post(scopes::edit),
        )
        .route("/admin/clients/", get(clients::list))
        .route(
            "/admin/clients/add/",
            get(clients::add_form).post(clients::add),
        )
        .route(
            "/admin/clients/{id}/",
            get(clients::edit_form).post(clients::edit),
        )
        .route(
            "/admin/clients/{id}/delete/",
            get(clients::confirm_delete).post(clients::delete),
        )
        .route(
            "/admin/clients/{id}/redirects/",
            post(clients::add_redirect),
        )
        .route(
            "/admin/clients/{id}/redirects/{endpoint}/delete/",
            get(clients::confirm_remove_redirect).post(clients::remove_redirect),
        )
        .route("/admin/clients/{id}/secret/", post(clients::new_secret))
        .route("/admin/clients/{id}/token/", post(clients::issue_token))
        .route("/admin/tokens/", get(tokens::list).post(tokens::revoke))
        .route(
            "/admin/codes/",
            get(tokens::codes).post(tokens::revoke_codes),
        )
        .route("/admin/users/", get(users::list))
        .route("/admin/users/add/", get(users::add_form).post(users::add))
        .route(
            "/admin/users/{id}/",
            get(users::edit_form).post(users::edit),
        )
}

/// A request from a logged-in, active staff user, with the session it came with.
///
/// As an extractor it refuses everyone else with a redirect to the login page, which
/// brings them back here once logged in as staff. The user is read from the database on
/// every request, so a user deactivated or demoted loses access at once.
pub(crate) struct Staff {
    session: Session,
    user: User,
}

impl FromRequestParts<WebState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await?;
        let user = match session.user() {
            Some((id, _)) => state
                .server
                .store()
                .user_by_id(id)
                .await
                .map_err(|e| failure_page(e.into()))?,
            None => None,
        };
        match user {
            Some(user) if user.is_active && user.is_staff => Ok(Self { session, user }),
            _ => {
                let here = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| state.path("/admin/"), |uri| uri.0.to_string());
                let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err(found(&format!("{}?next={next}", state.path("/login/"))))
            }
        }
    }
}

impl Staff {
    /// Page `template` of the admin site with `values`, plus what every admin page shows:
    /// the common variables, the navigation and the messages kept for this page.
    fn page(
        &mut self,
        state: &WebState,
        status: StatusCode,
        template: &str,
        title: &str,
        values: Value,
    ) -> Response {
        let common = common(state, &mut self.session, title);
        let flashes = self.session.take_flashes();
        let admin = context! {
            admin => state.path("/admin/"),
            logout => state.path("/logout/"),
            flashes => flashes,
        };
        page(state, status, template, merge_maps([values, admin, common]))
    }

    /// Keeps a success message for the next page.
    fn success(&mut self, message: impl Into<String>) {
        self.session.flash(false, message);
    }

    /// Keeps an error message for the next page.
    fn failure(&mut self, message: impl Into<String>) {
        self.session.flash(true, message);
    }

    /// The parameters of a form posted with the session's CSRF token, or the refusal.
    fn form(
        &mut self,
        state: &WebState,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Params, Response> {
        checked_form(state, &mut self.session, headers, body)
    }

    /// Saves the session and sends `response`.
    async fn respond(self, state: &WebState, response: Response) -> Response {
        self.session.respond(state, response).await
    }

    /// Saves the session and redirects to `path` under the admin root.
    async fn redirect(self, state: &WebState, path: &str) -> Response {
        let location = format!("{}{path}", state.path("/admin/"));
        self.respond(state, found(&location)).await
    }

    /// Saves the session and sends the page for a server failure (logged, not shown).
    async fn failed(mut self, state: &WebState, error: impl std::fmt::Display) -> Response {
        tracing::error!(%error, "admin request failed");
        let response = self.page(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "admin/message",
            "Error",
            context! { message => "The request failed; the error has been logged." },
        );
        self.respond(state, response).await
    }

    /// Saves the session and sends a 404 page naming what was not found.
    async fn not_found(mut self, state: &WebState, what: &str) -> Response {
        let response = self.page(
            state,
            StatusCode::NOT_FOUND,
            "admin/message",
            "Not found",
            context! { message => format!("There is no such {what}.") },
        );
        self.respond(state, response).await
    }
}

/// Runs `$body` (an expression giving a `Result<_, impl Display>`) and, on error,
/// returns the failure page from the handler.
macro_rules! try_or_fail {
    ($staff:ident, $state:expr, $body:expr) => {
        match $body {
            Ok(value) => value,
            Err(error) => return $staff.failed($state, error).await,
        }
    };
}
use try_or_fail;

/// `GET /admin/`: what can be managed, with counts.
async fn index(State(state): State<WebState>, mut staff: Staff) -> Response {
    let store = state.server.store();
    let sections = try_or_fail!(staff, &state, section_counts(store.as_ref(), &state).await);
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/index",
        "Administration",
        context! { sections => sections, username => staff.user.username.clone() },
    );
    staff.respond(&state, response).await
}

async fn section_counts(
    store: &dyn crate::store::Store,
    state: &WebState,
) -> Result<Vec<Value>, crate::store::StoreError> {
    use crate::store::admin::*;
    let one = PageRequest {
        offset: 0,
        limit: 0,
    };
    let now = state.server.now();
    let scopes = store
        .scope_page(&ScopeFilter::default(), ScopeSort::DEFAULT, one)
        .await?
        .total;
    let clients = store
        .client_page(&ClientFilter::default(), ClientSort::DEFAULT, one)
        .await?
        .total;
    let token_filter = TokenFilter {
        search: String::new(),
        client_id: None,
        kind: None,
        status: Some(TokenStatus::Active),
        issued: DateRange::default(),
        now,
    };
    let tokens = store
        .token_page(&token_filter, TokenSort::DEFAULT, one)
        .await?
        .total;
    let codes = store
        .code_page(&CodeFilter::default(), CodeSort::DEFAULT, one)
        .await?
        .total;
    let users = store
        .user_page(&UserFilter::default(), UserSort::DEFAULT, one)
        .await?
        .total;
    Ok(vec![
        context! { title => "Scopes", path => "scopes/", count => scopes, note => "" },
        context! { title => "Clients", path => "clients/", count => clients, note => "" },
        context! { title => "Tokens", path => "tokens/?status=active", count => tokens, note => "active" },
        context! { title => "Authorization codes", path => "codes/", count => codes, note => "" },
        context! { title => "Users", path => "users/", count => users, note => "" },
    ])
}
