//! The transport check (OAuth 2.0 requires TLS) and the headers every page carries.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use oauthost_core::error::OAuthError;

use super::{
    responses::{self, WithStatus},
    WebState,
};

/// What the server knows of the connection a request came over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    /// Whether it is https (TLS here, or at a trusted proxy).
    pub(crate) secure: bool,
    /// The client's address, when known.
    pub(crate) client_addr: Option<IpAddr>,
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next_back())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .split(',')
        .next_back()?
        .trim()
        .parse()
        .ok()
}

/// Refuses plain http unless in debug mode: 403 "OAuth 2.0 requires secure connection",
/// as JSON on the token-style endpoints and as the `forbidden` page elsewhere.
pub(crate) async fn require_secure_connection(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = state.server.settings();
    let trusted_proxy = settings.trust_forwarded_proto;
    let secure = settings.tls || (trusted_proxy && forwarded_https(request.headers()));
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client_addr = if trusted_proxy {
        forwarded_for(request.headers()).or(peer)
    } else {
        peer
    };
    if !secure && !settings.debug {
        let message = "OAuth 2.0 requires secure connection";
        return if is_json_endpoint(request.uri().path()) {
            responses::json_error(&OAuthError::invalid_request(message), None)
                .with_status(axum::http::StatusCode::FORBIDDEN)
        } else {
            responses::page(
                &state,
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                minijinja::context! { message => message, oauthost_title => "Forbidden" },
            )
        };
    }
    request.extensions_mut().insert(Connection {
        secure,
        client_addr,
    });
    next.run(request).await
}

fn is_json_endpoint(path: &str) -> bool {
    ["/token/", "/revoke/", "/introspect/"]
        .iter()
        .any(|suffix| path.ends_with(suffix))
        || path.contains("/.well-known/")
}

/// Adds the headers every HTML page of oauthost carries: no framing (clickjacking), no
/// caching, no referrer (codes and states stay out of other sites' logs), no sniffing.
pub(crate) fn add_page_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
