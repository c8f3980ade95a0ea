//! The authorization endpoint's decisions (RFC 6749 §3.1, §4.1.1, §4.2.1; RFC 7636 §4.3).

use oauthost_core::{
    client::GrantType,
    error::{ErrorCode, OAuthError},
    params::Params,
    pkce::{self, CodeChallengeMethod},
    redirect::{matches_registered, with_params},
    scope::ScopeList,
    secret::Secret,
};

use super::{seconds, tokens::Refresh, Oauthost, ServerError, ServerResult};
use crate::store::{Client, NewAuthorizationCode};

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// An authorization code (`response_type=code`).
    Code,
    /// An access token in the fragment (`response_type=token`, the implicit grant).
    Token,
}

/// An authorization request that passed every check, waiting for the user's decision.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: Client,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (rather than relying on the only one
    /// registered).
    pub redirect_uri_explicit: bool,
    /// What is asked for.
    pub response_type: ResponseType,
    /// The scopes to grant.
    pub scope: ScopeList,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The PKCE challenge and method.
    pub code_challenge: Option<(String, CodeChallengeMethod)>,
}

/// Where to send the browser back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    /// The full URL, parameters included.
    pub url: String,
    /// Whether the client accepts a `#` in a `Location` header; when it does not and the
    /// URL has a fragment, the browser is shown a page with a link instead.
    pub hash_sign_supported: bool,
}

impl ClientRedirect {
    /// Whether a page with a link must be shown instead of a `302`.
    pub fn needs_proceed_page(&self) -> bool {
        !self.hash_sign_supported && self.url.contains('#')
    }
}

/// Why an authorization request cannot proceed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Before the redirect URI is trusted: shown on an error page, never redirected.
    Page(OAuthError),
    /// Sent back to the client's redirect URI.
    Redirect {
        /// The error.
        error: OAuthError,
        /// Where to send it.
        redirect: ClientRedirect,
    },
    /// The server failed.
    Internal(ServerError),
}

impl From<ServerError> for AuthorizeError {
    fn from(error: ServerError) -> Self {
        match error {
            ServerError::OAuth(error) => Self::Page(error),
            other => Self::Internal(other),
        }
    }
}

/// Builds redirects to one client's redirect URI.
struct Responder<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    in_fragment: bool,
    hash_sign_supported: bool,
}

impl Responder<'_> {
    fn send(&self, params: Vec<(&str, &str)>) -> ClientRedirect {
        let mut params = params;
        let state;
        if let Some(value) = self.state {
            state = value.to_owned();
            params.push(("state", &state));
        }
        ClientRedirect {
            url: with_params(self.redirect_uri, &params, self.in_fragment),
            hash_sign_supported: self.hash_sign_supported,
        }
    }

    fn error(&self, error: OAuthError) -> AuthorizeError {
        let redirect = self.send(vec![
            ("error", error.code.as_str()),
            ("error_description", &error.description),
        ]);
        AuthorizeError::Redirect { error, redirect }
    }
}

impl Oauthost {
    /// Checks an authorization request, in the order RFC 6749 asks: the client and its
    /// redirect URI first (failures shown on a page), then everything else (failures sent to
    /// the redirect URI).
    pub async fn validate_authorization(
        &self,
        params: &Params,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let client_id = params
            .get("client_id")
            .map_err(AuthorizeError::Page)?
            .ok_or_else(|| {
                AuthorizeError::Page(OAuthError::invalid_request("client_id is required"))
            })?;
        let client = self
            .store()
            .find_client(client_id)
            .await
            .map_err(|e| AuthorizeError::Internal(e.into()))?
            .ok_or_else(|| {
                AuthorizeError::Page(OAuthError::invalid_request(format!(
                    "Unknown client '{}'",
                    client_id.escape_debug()
                )))
            })?;
        let registered = self
            .store()
            .redirect_uris(client.id)
            .await
            .map_err(|e| AuthorizeError::Internal(e.into()))?;
        let explicit_redirect = params.get("redirect_uri").map_err(AuthorizeError::Page)?;
        let redirect_uri = match explicit_redirect {
            Some(requested) => {
                if !registered.iter().any(|r| matches_registered(requested, r)) {
                    return Err(AuthorizeError::Page(OAuthError::invalid_request(
                        "redirect_uri does not match any redirection endpoint registered for this client",
                    )));
                }
                requested.to_owned()
            }
            None => {
                match registered.as_slice() {
                    [only] => only.clone(),
                    [] => {
                        return Err(AuthorizeError::Page(OAuthError::invalid_request(
                            "This client has no registered redirection endpoint",
                        )))
                    }
                    _ => return Err(AuthorizeError::Page(OAuthError::invalid_request(
                        "redirect_uri is required: this client has several redirection endpoints",
                    ))),
                }
            }
        };

        // From here on, errors go back to the client.
        let response_type = params.get("response_type");
        let in_fragment = matches!(response_type, Ok(Some("token")));
        let state = params.get("state");
        let responder = Responder {
            redirect_uri: &redirect_uri,
            state: state.as_ref().ok().copied().flatten(),
            in_fragment,
            hash_sign_supported: client.hash_sign_supported,
        };
        let state = state.map_err(|e| responder.error(e))?;
        let response_type = match response_type.map_err(|e| responder.error(e))? {
            None => {
                return Err(
                    responder.error(OAuthError::invalid_request("response_type is required"))
                )
            }
            Some("code") => ResponseType::Code,
            Some("token") if self.settings().implicit_grant => ResponseType::Token,
            Some(other) => {
                return Err(responder.error(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    format!("Unsupported response_type '{}'", other.escape_debug()),
                )))
            }
        };
        let grant = match response_type {
            ResponseType::Code => GrantType::AuthorizationCode,
            ResponseType::Token => GrantType::Implicit,
        };
        if !client.grant_types.allows(grant) {
            return Err(responder.error(OAuthError::unauthorized_client(format!(
                "This client may not use the {grant} grant"
            ))));
        }
        let requested_scope = params.get("scope").map_err(|e| responder.error(e))?;
        let scope = match self.grant_scope(&client, requested_scope).await {
            Ok(scope) => scope,
            Err(ServerError::OAuth(error)) => return Err(responder.error(error)),
            Err(other) => return Err(AuthorizeError::Internal(other)),
        };
        let code_challenge = self
            .check_pkce(&client, response_type, params)
            .map_err(|e| responder.error(e))?;
        Ok(AuthorizationRequest {
            client,
            redirect_uri: redirect_uri.clone(),
            redirect_uri_explicit: explicit_redirect.is_some(),
            response_type,
            scope,
            state: state.map(str::to_owned),
            code_challenge,
        })
    }

    fn check_pkce(
        &self,
        client: &Client,
        response_type: ResponseType,
        params: &Params,
    ) -> Result<Option<(String, CodeChallengeMethod)>, OAuthError> {
        let challenge = params.get("code_challenge")?;
        let method = params.get("code_challenge_method")?;
        match (response_type, challenge) {
            (ResponseType::Token, None) if method.is_none() => Ok(None),
            (ResponseType::Token, _) => Err(OAuthError::invalid_request(
                "PKCE applies to response_type=code only",
            )),
            (ResponseType::Code, None) if method.is_some() => Err(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge",
            )),
            (ResponseType::Code, None)
                if client.secret_hash.is_none() && self.settings().pkce_required_for_public_clients =>
            {
                Err(OAuthError::invalid_request(
                    "PKCE is required for public clients: send code_challenge and code_challenge_method=S256",
                ))
            }
            (ResponseType::Code, None) => Ok(None),
            (ResponseType::Code, Some(challenge)) => {
                let method = method.unwrap_or("plain").parse::<CodeChallengeMethod>()?;
                if method == CodeChallengeMethod::Plain && !self.settings().pkce_plain {
                    return Err(OAuthError::invalid_request(
                        "code_challenge_method=plain is not allowed: use S256",
                    ));
                }
                pkce::check_challenge(challenge)?;
                Ok(Some((challenge.to_owned(), method)))
            }
        }
    }

    fn responder<'a>(&self, request: &'a AuthorizationRequest) -> Responder<'a> {
        Responder {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            in_fragment: request.response_type == ResponseType::Token,
            hash_sign_supported: request.client.hash_sign_supported,
        }
    }

    /// The user approved: issues a code, or a token for the implicit grant, and says where
    /// to send the browser.
    pub async fn approve(
        &self,
        request: &AuthorizationRequest,
        user_id: i64,
    ) -> ServerResult<ClientRedirect> {
        let responder = self.responder(request);
        match request.response_type {
            ResponseType::Code => {
                let code = Secret::generate_stamped();
                let now = self.now();
                let (challenge, method) = match &request.code_challenge {
                    Some((challenge, method)) => {
                        (Some(challenge.clone()), Some(method.as_str().to_owned()))
                    }
                    None => (None, None),
                };
                self.store()
                    .insert_code(NewAuthorizationCode {
                        code_hash: code.hash(),
                        client_id: request.client.id,
                        user_id,
                        redirect_uri: request.redirect_uri.clone(),
                        redirect_uri_explicit: request.redirect_uri_explicit,
                        scopes: request.scope.clone(),
                        code_challenge: challenge,
                        code_challenge_method: method,
                        issued_at: now,
                        expires_at: now + seconds(self.settings().code_lifetime),
                    })
                    .await?;
                Ok(responder.send(vec![("code", code.expose())]))
            }
            ResponseType::Token => {
                let issued = self
                    .issue_token(
                        &request.client,
                        Some(user_id),
                        request.scope.clone(),
                        None,
                        Refresh::None,
                    )
                    .await?;
                let expires_in = issued.expires_in.to_string();
                let scope = issued.scope.to_string();
                Ok(responder.send(vec![
                    ("access_token", issued.access_token.expose()),
                    ("token_type", "Bearer"),
                    ("expires_in", &expires_in),
                    ("scope", &scope),
                ]))
            }
        }
    }

    /// The user declined: `access_denied` for the client.
    pub fn decline(&self, request: &AuthorizationRequest) -> ClientRedirect {
        match self.responder(request).error(OAuthError::new(
            ErrorCode::AccessDenied,
            "The user denied the request",
        )) {
            AuthorizeError::Redirect { redirect, .. } => redirect,
            _ => ClientRedirect {
                url: request.redirect_uri.clone(),
                hash_sign_supported: request.client.hash_sign_supported,
            },
        }
    }
}
