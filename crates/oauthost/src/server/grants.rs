//! The token endpoint's grants (RFC 6749 §4.1.3, §4.3, §4.4, §6; RFC 7636 §4.6).

use std::{net::IpAddr, sync::Mutex};

use oauthost_core::{
    client::{ClientType, GrantType},
    error::{ErrorCode, OAuthError},
    params::Params,
    pkce::{self, CodeChallengeMethod},
    scope::{self, ScopeList},
    secret::Secret,
};

use super::{
    tokens::Refresh, ClientCredentials, IssuedToken, LoginOutcome, Oauthost, ServerResult,
};
use crate::store::{AuthorizationCode, Client, CodeExchange, NewToken, TokenDetails};

impl Oauthost {
    /// Handles a token request: authenticates the client, checks the grant, issues a token.
    ///
    /// `client_addr`, when known, counts password-grant failures against the address too.
    pub async fn token(
        &self,
        params: &Params,
        credentials: &ClientCredentials,
        client_addr: Option<IpAddr>,
    ) -> ServerResult<IssuedToken> {
        let grant_type = params.get("grant_type")?;
        let client = self.authenticate_client(credentials).await?;
        let grant = match grant_type {
            None => {
                return Err(
                    OAuthError::invalid_request("Parameter 'grant_type' is required").into(),
                )
            }
            Some("authorization_code") => GrantType::AuthorizationCode,
            Some("password") if self.settings().password_grant => GrantType::Password,
            Some("client_credentials") => GrantType::ClientCredentials,
            Some("refresh_token") => GrantType::RefreshToken,
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("Unsupported grant_type '{}'", other.escape_debug()),
                )
                .into())
            }
        };
        if !client.grant_types.allows(grant) {
            return Err(OAuthError::unauthorized_client(format!(
                "This client may not use the {grant} grant"
            ))
            .into());
        }
        match grant {
            GrantType::AuthorizationCode => self.authorization_code_grant(&client, params).await,
            GrantType::Password => self.password_grant(&client, params, client_addr).await,
            GrantType::ClientCredentials => self.client_credentials_grant(&client, params).await,
            GrantType::RefreshToken => self.refresh_grant(&client, params).await,
            GrantType::Implicit => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "The implicit grant is used at the authorization endpoint",
            )
            .into()),
        }
    }

    /// The scopes `client` may be granted now: its enabled registered scopes, or every
    /// enabled scope when it is unrestricted. Returns them and whether it is restricted.
    pub(crate) async fn available_scopes(
        &self,
        client: &Client,
    ) -> ServerResult<(ScopeList, bool)> {
        let Some(cache) = &self.inner.client_cache else {
            return self.read_available_scopes(client).await;
        };
        let generation = match cache.lookup_scopes(client.id).await {
            Ok(scopes) => return Ok(scopes),
            Err(generation) => generation,
        };
        let scopes = self.read_available_scopes(client).await?;
        cache.insert_scopes(
            client.id,
            scopes.clone(),
            generation,
            std::time::Instant::now(),
        );
        Ok(scopes)
    }

    /// [`available_scopes`](Self::available_scopes), from the store.
    async fn read_available_scopes(&self, client: &Client) -> ServerResult<(ScopeList, bool)> {
        let registered = self.store().client_scopes(client.id).await?;
        let (scopes, restricted) = if registered.is_empty() {
            (self.store().list_scopes().await?, false)
        } else {
            (registered, true)
        };
        Ok((
            scopes
                .into_iter()
                .filter(|s| s.enabled)
                .map(|s| s.identifier)
                .collect(),
            restricted,
        ))
    }

    /// The scope to grant for a `scope` parameter, by the seed's rules.
    pub(crate) async fn grant_scope(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> ServerResult<ScopeList> {
        let requested = scope::parse_requested(requested)?;
        let (available, restricted) = self.available_scopes(client).await?;
        Ok(scope::grant(requested.as_ref(), &available, restricted)?)
    }

    async fn authorization_code_grant(
        &self,
        client: &Client,
        params: &Params,
    ) -> ServerResult<IssuedToken> {
        let code = params.require("code")?;
        let redirect_uri = params.get("redirect_uri")?;
        let verifier = params.get("code_verifier")?;
        let now = self.now();
        let family = Self::new_family(client);
        let issued = Mutex::new(None);
        let check = |code: &AuthorizationCode| -> Result<NewToken, OAuthError> {
            check_code(code, now, redirect_uri, verifier)?;
            let (token, sent) = self.new_token(
                client,
                Some(code.user_id),
                code.scopes.clone(),
                family.clone(),
            );
            if let Ok(mut slot) = issued.lock() {
                *slot = Some(sent);
            }
            Ok(token)
        };
        match self
            .store()
            .exchange_code(&Secret::new(code).hash(), client.id, &check)
            .await?
        {
            CodeExchange::Issued(_) => issued
                .into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| OAuthError::server_error().into()),
            CodeExchange::Refused(error) => Err(error.into()),
            CodeExchange::AlreadyUsed(code) => {
                let revoked = self.store().revoke_tokens_from_code(code.id).await?;
                tracing::warn!(client = %client.identifier, revoked, "authorization code replayed; its tokens are revoked");
                Err(OAuthError::invalid_grant("Authorization code has already been used").into())
            }
            CodeExchange::Unknown => {
                Err(OAuthError::invalid_grant("Invalid authorization code").into())
            }
        }
    }

    async fn password_grant(
        &self,
        client: &Client,
        params: &Params,
        client_addr: Option<IpAddr>,
    ) -> ServerResult<IssuedToken> {
        let username = params.require("username")?;
        let password = params.require("password")?;
        let scope = self.grant_scope(client, params.get("scope")?).await?;
        match self.log_in(username, password, client_addr).await? {
            LoginOutcome::Success(user) => {
                self.issue_token(client, Some(user.id), scope, None, Refresh::New)
                    .await
            }
            LoginOutcome::Failed => {
                Err(OAuthError::invalid_grant("Invalid username or password").into())
            }
            LoginOutcome::Locked { minutes } => Err(OAuthError::invalid_grant(format!(
                "Too many failed login attempts: try again in {minutes} minute(s)"
            ))
            .into()),
        }
    }

    async fn client_credentials_grant(
        &self,
        client: &Client,
        params: &Params,
    ) -> ServerResult<IssuedToken> {
        if client.client_type != ClientType::Confidential || client.secret_hash.is_none() {
            return Err(OAuthError::unauthorized_client(
                "Only confidential clients may use the client_credentials grant",
            )
            .into());
        }
        let scope = self.grant_scope(client, params.get("scope")?).await?;
        self.issue_token(
            client,
            Some(client.registrant_id),
            scope,
            None,
            Refresh::None,
        )
        .await
    }

    async fn refresh_grant(&self, client: &Client, params: &Params) -> ServerResult<IssuedToken> {
        let value = params.require("refresh_token")?;
        let requested = scope::parse_requested(params.get("scope")?)?;
        // The token and whether its user is active, in one query.
        let Some(TokenDetails {
            token: old,
            user_active,
            ..
        }) = self
            .store()
            .find_token_details(&Secret::new(value).hash(), true)
            .await?
        else {
            return Err(OAuthError::invalid_grant("Invalid refresh token").into());
        };
        if old.client_id != client.id {
            return Err(
                OAuthError::invalid_grant("Refresh token was issued to another client").into(),
            );
        }
        let family = old.refresh_family.clone().unwrap_or_default();
        if old.refresh_rotated {
            let revoked = self.store().revoke_family(&family).await?;
            tracing::warn!(client = %client.identifier, revoked, "refresh token replayed; its family is revoked");
            return Err(OAuthError::invalid_grant("Refresh token has already been used").into());
        }
        if old.revoked {
            return Err(OAuthError::invalid_grant("Refresh token has been revoked").into());
        }
        if !user_active {
            return Err(OAuthError::invalid_grant("The token's user is inactive").into());
        }
        let scope = match requested {
            Some(narrower) if !narrower.is_empty() => {
                if !old.scopes.includes(&narrower) {
                    return Err(OAuthError::invalid_scope(
                        "The requested scope exceeds the scope originally granted",
                    )
                    .into());
                }
                narrower
            }
            _ => old.scopes.clone(),
        };
        // Scopes disabled or withdrawn from the client since are not granted again.
        let (available, _) = self.available_scopes(client).await?;
        let scope: ScopeList = scope
            .iter()
            .filter(|s| available.contains(s))
            .cloned()
            .collect();
        if scope.is_empty() {
            return Err(OAuthError::invalid_scope(
                "None of the token's scopes is available any more",
            )
            .into());
        }
        self.issue_token(
            client,
            old.user_id,
            scope,
            old.code_id,
            Refresh::Rotate {
                old_id: old.id,
                family,
            },
        )
        .await
    }
}

/// The checks of a consumed code (RFC 6749 §4.1.3, RFC 7636 §4.6).
fn check_code(
    code: &AuthorizationCode,
    now: time::OffsetDateTime,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("Authorization code has expired"));
    }
    match redirect_uri {
        Some(uri) if uri != code.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the one of the authorization request",
            ))
        }
        None if code.redirect_uri_explicit => {
            return Err(OAuthError::invalid_request(
                "Parameter 'redirect_uri' is required: the authorization request included it",
            ))
        }
        _ => {}
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let method = code
                .code_challenge_method
                .as_deref()
                .unwrap_or("plain")
                .parse::<CodeChallengeMethod>()?;
            if !pkce::verify(verifier, challenge, method) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code challenge",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required for this code",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    Ok(())
}
