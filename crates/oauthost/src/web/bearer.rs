//! Protecting an application's handlers with bearer tokens (RFC 6750).
//!
//! A client sends its access token in one of three ways (the seed's section 4.2):
//! `Authorization: Bearer <token>` (recommended), `access_token` in a form-encoded body (not
//! with `GET`),
//! or `access_token` in the query string (which [`Settings::query_tokens`] can switch off).
//! More than one way in one request is `invalid_request`.
//!
//! - [`Authorized`] is an extractor: a handler that takes it runs only with a valid token,
//!   and can read the token's user, client and scopes. Its state must give an [`Oauthost`]
//!   through `FromRef`.
//! - [`RequireScope`] also checks a scope, named by a type implementing [`RequiredScope`];
//!   the `#[oauth_required]` attribute writes that type for you.
//! - [`BearerLayer`] protects a whole router (or nest) by one scope (use it with
//!   `route_layer`), and is also what lets the extractors see tokens sent in a form body:
//!   add `.layer(BearerLayer::form_tokens())` to routes that take them. Without it, the
//!   extractors never read the body, so they neither find a token there nor notice one sent
//!   there as well as in the header.
//!
//! `scope_auto` names the scope after the app and the function's name alone: two handlers
//! called alike in different modules of one app share their scope.
//!
//! Refusals: no token, 401 with `WWW-Authenticate: Bearer realm="..."` and no error code;
//! an unknown, expired or revoked token, or one whose user is inactive, 401 `invalid_token`;
//! a valid token without the scope, 403 `insufficient_scope` with `scope="..."`. Browsers
//! (`Accept: text/html`) get the `restricted` page, other clients JSON. Checking a token never
//! creates a session or sets a cookie.
//!
//! [`Settings::query_tokens`]: crate::server::Settings::query_tokens

use std::{
    convert::Infallible,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::{FromRef, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use minijinja::context;
use oauthost_core::scope::ScopeList;
use serde_json::json;
use tower::{Layer, Service};

use super::{forms::is_form, security::add_page_headers};
use crate::{
    server::{Oauthost, ServerError},
    store::{Token, TokenDetails},
};

/// The largest form body searched for an `access_token`: axum's own default body limit.
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// A request carrying a valid access token: the token, its user and its client.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// As the token cache shares it: cloning an `Authorized` copies a pointer.
    details: Arc<TokenDetails>,
}

impl Authorized {
    /// The username of the token's user (`None` for a token without a user).
    pub fn username(&self) -> Option<&str> {
        self.details.username.as_deref()
    }

    /// The database key of the token's user.
    pub fn user_id(&self) -> Option<i64> {
        self.details.token.user_id
    }

    /// The public identifier of the client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.details.client_identifier
    }

    /// The scopes granted to the token.
    pub fn scopes(&self) -> &ScopeList {
        &self.details.token.scopes
    }

    /// Whether the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().iter().any(|s| s.as_str() == scope)
    }

    /// The stored token.
    pub fn token(&self) -> &Token {
        &self.details.token
    }
}

/// A scope a handler requires, as a type (written by `#[oauth_required]`).
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope identifier.
    const SCOPE: &'static str;
}

/// An extractor that admits a request only with a valid token granted `S::SCOPE`.
#[derive(Debug, Clone)]
pub struct RequireScope<S: RequiredScope>(pub Authorized, PhantomData<S>);

/// A handler protected with `#[oauth_required]`, as `syncscopes` finds it.
#[derive(Debug, Clone, Copy)]
pub struct ProtectedHandler {
    /// The app (by default, the crate) the handler belongs to.
    pub app: &'static str,
    /// The handler's function name.
    pub handler: &'static str,
    /// The scope it requires, if any.
    pub scope: Option<&'static str>,
}

inventory::collect!(ProtectedHandler);

/// An app declared with [`declare_app!`](crate::declare_app), so that `syncscopes` knows it
/// even before it has protected handlers.
#[derive(Debug, Clone, Copy)]
pub struct DeclaredApp {
    /// The app's name.
    pub name: &'static str,
}

inventory::collect!(DeclaredApp);

/// Every protected handler linked into this binary.
pub fn protected_handlers() -> impl Iterator<Item = &'static ProtectedHandler> {
    inventory::iter::<ProtectedHandler>.into_iter()
}

/// Every app declared or having protected handlers in this binary, sorted, without repeats.
pub fn known_apps() -> Vec<&'static str> {
    let mut apps: Vec<&'static str> = inventory::iter::<DeclaredApp>
        .into_iter()
        .map(|app| app.name)
        .chain(protected_handlers().map(|h| h.app))
        .collect();
    apps.sort_unstable();
    apps.dedup();
    apps
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No token was sent.
    Missing,
    /// The request was malformed: `invalid_request`.
    Malformed(String),
    /// The token is unknown, expired or revoked, or its user inactive: `invalid_token`.
    Invalid,
    /// The token lacks this scope: `insufficient_scope`.
    InsufficientScope(String),
    /// The server failed.
    Internal,
}

/// The response refusing a request: status, `WWW-Authenticate`, and a page or JSON.
#[derive(Debug)]
pub struct BearerRejection {
    error: BearerError,
    realm: String,
    html: Option<String>,
}

impl BearerRejection {
    /// What was wrong.
    pub fn error(&self) -> &BearerError {
        &self.error
    }

    fn new(server: &Oauthost, headers: &HeaderMap, error: BearerError) -> Self {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        let mut rejection = Self {
            error,
            realm: server.settings().realm.clone(),
            html: None,
        };
        if wants_html {
            let (code, description) = rejection.describe();
            let page = server.templates().render(
                "restricted",
                context! {
                    oauthost_title => "Access restricted",
                    message => description,
                    error => code,
                    error_description => description,
                },
            );
            rejection.html = page.ok();
        }
        rejection
    }

    fn describe(&self) -> (Option<&'static str>, String) {
        match &self.error {
            BearerError::Missing => (None, "This resource requires an access token".into()),
            BearerError::Malformed(message) => (Some("invalid_request"), message.clone()),
            BearerError::Invalid => (
                Some("invalid_token"),
                "The access token is invalid, expired or revoked".into(),
            ),
            BearerError::InsufficientScope(scope) => (
                Some("insufficient_scope"),
                format!("The access token does not grant the scope {scope}"),
            ),
            BearerError::Internal => (
                Some("server_error"),
                "The server failed to check the access token".into(),
            ),
        }
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let status = match self.error {
            BearerError::Missing | BearerError::Invalid => StatusCode::UNAUTHORIZED,
            BearerError::Malformed(_) => StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            BearerError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let (code, description) = self.describe();
        let mut challenge = format!("Bearer realm=\"{}\"", quotable(&self.realm));
        // RFC 6750 §3 has no code for a server failure: the challenge then names none.
        if let Some(code) = code.filter(|_| !matches!(self.error, BearerError::Internal)) {
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                quotable(&description)
            ));
        }
        if let BearerError::InsufficientScope(scope) = &self.error {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(scope)));
        }
        let mut response = match self.html {
            Some(html) => {
                let mut response = (status, axum::response::Html(html)).into_response();
                add_page_headers(response.headers_mut());
                response
            }
            None => {
                let body = match code {
                    Some(code) => json!({ "error": code, "error_description": description }),
                    None => json!({ "error_description": description }),
                };
                (status, axum::Json(body)).into_response()
            }
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// `text` as RFC 6750 §3 allows it inside a quoted attribute: printable ASCII without `"`
/// or `\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// The token of a form body, found by a [`BearerLayer`].
#[derive(Debug, Clone)]
struct FormToken(Result<Option<String>, String>);

fn header_token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerError::Malformed(
            "Send one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| BearerError::Malformed("Malformed Authorization header".into()))?;
    let value = value.trim();
    let (scheme, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::Malformed(
            "The Bearer authorization has no token".into(),
        ));
    }
    Ok(Some(token))
}

/// The `access_token` of form-encoded `input`, looking at no other parameter (the
/// application's own parameters are none of oauthost's business).
fn access_token_in(input: &[u8]) -> Result<Option<String>, BearerError> {
    let mut tokens = url::form_urlencoded::parse(input)
        .filter(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned());
    let token = tokens.next();
    if tokens.next().is_some() {
        return Err(BearerError::Malformed(
            "Parameter 'access_token' must not be repeated".into(),
        ));
    }
    Ok(token.filter(|token| !token.is_empty()))
}

fn query_token(server: &Oauthost, query: Option<&str>) -> Result<Option<String>, BearerError> {
    let token = access_token_in(query.unwrap_or_default().as_bytes())?;
    match token {
        Some(_) if !server.settings().query_tokens => Err(BearerError::Malformed(
            "This server does not accept access tokens in the query string".into(),
        )),
        token => Ok(token),
    }
}

/// Finds the one token of a request and checks it.
async fn authorize(server: &Oauthost, parts: &Parts) -> Result<Authorized, BearerError> {
    if let Some(authorized) = parts.extensions.get::<Authorized>() {
        return Ok(authorized.clone());
    }
    let form = match parts.extensions.get::<FormToken>() {
        Some(FormToken(Ok(token))) => token.as_deref(),
        Some(FormToken(Err(message))) => return Err(BearerError::Malformed(message.clone())),
        None => None,
    };
    let query = query_token(server, parts.uri.query())?;
    let mut found = [header_token(&parts.headers)?, query.as_deref(), form]
        .into_iter()
        .flatten();
    let token = match (found.next(), found.next()) {
        (None, _) => return Err(BearerError::Missing),
        (Some(token), None) => token,
        (Some(_), Some(_)) => {
            return Err(BearerError::Malformed(
                "Send the access token one way only: Authorization header, form body or query"
                    .into(),
            ))
        }
    };
    match server.check_access_token_shared(token).await {
        Ok(Some(details)) => Ok(Authorized { details }),
        Ok(None) => Err(BearerError::Invalid),
        Err(error) => {
            if !matches!(error, ServerError::OAuth(_)) {
                tracing::error!(%error, "checking an access token failed");
            }
            Err(BearerError::Internal)
        }
    }
}

fn require(authorized: &Authorized, scope: &str) -> Result<(), BearerError> {
    if authorized.has_scope(scope) {
        Ok(())
    } else {
        Err(BearerError::InsufficientScope(scope.to_owned()))
    }
}

impl<S> FromRequestParts<S> for Authorized
where
    Oauthost: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let server = Oauthost::from_ref(state);
        let authorized = authorize(&server, parts)
            .await
            .map_err(|error| BearerRejection::new(&server, &parts.headers, error))?;
        // Later extractors of the same request reuse the check.
        parts.extensions.insert(authorized.clone());
        Ok(authorized)
    }
}

impl<S, R> FromRequestParts<S> for RequireScope<R>
where
    Oauthost: FromRef<S>,
    S: Send + Sync,
    R: RequiredScope,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let server = Oauthost::from_ref(state);
        let checked = match authorize(&server, parts).await {
            Ok(authorized) => require(&authorized, R::SCOPE).map(|()| authorized),
            Err(error) => Err(error),
        };
        let authorized =
            checked.map_err(|error| BearerRejection::new(&server, &parts.headers, error))?;
        parts.extensions.insert(authorized.clone());
        Ok(Self(authorized, PhantomData))
    }
}

#[derive(Debug, Clone)]
enum Mode {
    FormTokens,
    Protect {
        server: Oauthost,
        scope: Option<String>,
    },
}

/// A tower layer that reads tokens from form bodies and, built with
/// [`Oauthost::protect`] or [`Oauthost::protect_any`], refuses requests without a valid
/// token (with the scope).
#[derive(Debug, Clone)]
pub struct BearerLayer {
    mode: Mode,
}

impl BearerLayer {
    /// Only makes tokens sent in form bodies visible to the extractors.
    pub fn form_tokens() -> Self {
        Self {
            mode: Mode::FormTokens,
        }
    }
}

impl Oauthost {
    /// A layer admitting only requests with a valid token granted `scope`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use oauthost::server::Oauthost;
    ///
    /// let oauthost = Oauthost::new(oauthost::store::connect("sqlite::memory:").await?);
    /// // `route_layer`, so that unknown paths still answer 404, not 401.
    /// let api: axum::Router = axum::Router::new()
    ///     .route("/stats", axum::routing::get(|| async { "42" }))
    ///     .route_layer(oauthost.protect("polls:stats"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn protect(&self, scope: &str) -> BearerLayer {
        BearerLayer {
            mode: Mode::Protect {
                server: self.clone(),
                scope: Some(scope.to_owned()),
            },
        }
    }

    /// A layer admitting only requests with a valid token, whatever its scopes.
    pub fn protect_any(&self) -> BearerLayer {
        BearerLayer {
            mode: Mode::Protect {
                server: self.clone(),
                scope: None,
            },
        }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            mode: self.mode.clone(),
        }
    }
}

/// The service of a [`BearerLayer`].
#[derive(Debug, Clone)]
pub struct BearerService<S> {
    inner: S,
    mode: Mode,
}

/// Reads a form body's `access_token`, putting the body back for the handler. Only for
/// methods whose body has a meaning: never `GET` or `HEAD` (RFC 6750 §2.2).
async fn read_form_token(request: Request) -> Result<Request, Response> {
    let method = request.method();
    if method == Method::GET || method == Method::HEAD || !is_form(request.headers()) {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(json!({
            "error": "invalid_request",
            "error_description": format!("The request body is larger than {MAX_FORM_BYTES} bytes"),
        })))
            .into_response()
        })?;
    let token = access_token_in(&bytes).map_err(|error| match error {
        BearerError::Malformed(message) => message,
        other => format!("{other:?}"),
    });
    parts.extensions.insert(FormToken(token));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

impl<S> Service<Request> for BearerService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mode = self.mode.clone();
        Box::pin(async move {
            let request = match read_form_token(request).await {
                Ok(request) => request,
                Err(response) => return Ok(response),
            };
            let Mode::Protect { server, scope } = mode else {
                return inner.call(request).await;
            };
            let (mut parts, body) = request.into_parts();
            let checked = match authorize(&server, &parts).await {
                Ok(authorized) => match &scope {
                    Some(scope) => require(&authorized, scope).map(|()| authorized),
                    None => Ok(authorized),
                },
                Err(error) => Err(error),
            };
            match checked {
                Ok(authorized) => {
                    parts.extensions.insert(authorized);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(error) => {
                    Ok(BearerRejection::new(&server, &parts.headers, error).into_response())
                }
            }
        })
    }
}
