//! `/.well-known/oauth-authorization-server`: server metadata (RFC 8414).

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::Response,
    Extension,
};
use serde::Serialize;

use super::{responses, security::Connection, WebState};

#[derive(Serialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    scopes_supported: Vec<String>,
    response_types_supported: Vec<&'static str>,
    response_modes_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    code_challenge_methods_supported: Vec<&'static str>,
}

/// `GET /.well-known/oauth-authorization-server`.
pub(crate) async fn metadata(
    State(state): State<WebState>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let settings = state.server.settings();
    let issuer = settings.issuer.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if connection.secure { "https" } else { "http" };
        format!("{scheme}://{host}{}", settings.mount_path)
    });
    let issuer = issuer.trim_end_matches('/').to_owned();
    let endpoint = |path: &str| format!("{issuer}{path}");
    let scopes = match state.server.store().list_scopes().await {
        Ok(scopes) => scopes
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| s.identifier.to_string())
            .collect(),
        Err(error) => {
            let error = responses::to_oauth_error(error.into());
            return responses::json_error(&error, None);
        }
    };
    let mut response_types = vec!["code"];
    let mut response_modes = vec!["query"];
    let mut grants = vec!["authorization_code", "client_credentials", "refresh_token"];
    if settings.implicit_grant {
        response_types.push("token");
        response_modes.push("fragment");
        grants.push("implicit");
    }
    if settings.password_grant {
        grants.push("password");
    }
    let mut pkce = vec!["S256"];
    if settings.pkce_plain {
        pkce.push("plain");
    }
    let client_auth = vec!["client_secret_basic", "client_secret_post", "none"];
    responses::json(&Metadata {
        authorization_endpoint: endpoint("/auth/"),
        token_endpoint: endpoint("/token/"),
        revocation_endpoint: endpoint("/revoke/"),
        introspection_endpoint: endpoint("/introspect/"),
        issuer,
        scopes_supported: scopes,
        response_types_supported: response_types,
        response_modes_supported: response_modes,
        grant_types_supported: grants,
        token_endpoint_auth_methods_supported: client_auth.clone(),
        revocation_endpoint_auth_methods_supported: client_auth,
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        code_challenge_methods_supported: pkce,
    })
}
