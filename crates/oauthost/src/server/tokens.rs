//! Issuing, checking, revoking and introspecting tokens.

use std::{sync::Arc, time::Instant};

use oauthost_core::{
    client::{ClientType, GrantType},
    error::OAuthError,
    params::Params,
    scope::ScopeList,
    secret::{stamped_identifier, Secret, SecretHash},
};
use serde::Serialize;

use super::{ClientCredentials, Oauthost, ServerResult};
use crate::store::{Client, NewToken, Token, TokenDetails};

/// A token just issued: the values to send once.
#[derive(Debug)]
pub struct IssuedToken {
    /// The access token.
    pub access_token: Secret,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The refresh token, when the grant gives one.
    pub refresh_token: Option<Secret>,
    /// The scopes granted.
    pub scope: ScopeList,
}

/// Whether and how a new token gets a refresh token.
#[derive(Debug)]
pub(crate) enum Refresh {
    /// No refresh token (client credentials, implicit).
    None,
    /// A refresh token starting a new family, if the client may refresh.
    New,
    /// A refresh token replacing the token `old_id` of `family`.
    Rotate {
        /// Database key of the token being replaced.
        old_id: i64,
        /// Its family.
        family: String,
    },
}

/// A valid access token with what a resource server needs to know about it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The stored token.
    pub token: Token,
    /// The public identifier of its client.
    pub client_id: String,
    /// The username of its user, if it has one.
    pub username: Option<String>,
}

/// An introspection response (RFC 7662 §2.2).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// Its scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Its client's identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its user's username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            username: None,
            token_type: None,
            exp: None,
            iat: None,
        }
    }
}

impl Oauthost {
    /// A new token for `client` (with a refresh token when it may refresh and `refresh`),
    /// as stored and as sent.
    pub(crate) fn new_token(
        &self,
        client: &Client,
        user_id: Option<i64>,
        scope: ScopeList,
        refresh: Option<String>,
    ) -> (NewToken, IssuedToken) {
        let now = self.now();
        let access_token = Secret::generate_stamped();
        let refresh_token = refresh.as_ref().map(|_| Secret::generate_stamped());
        let stored = NewToken {
            access_token_hash: access_token.hash(),
            refresh_token_hash: refresh_token.as_ref().map(Secret::hash),
            user_id,
            client_id: client.id,
            code_id: None,
            scopes: scope.clone(),
            issued_at: now,
            expires_at: now + time::Duration::seconds(client.token_lifetime),
            refresh_family: refresh,
        };
        let issued = IssuedToken {
            access_token,
            expires_in: client.token_lifetime,
            refresh_token,
            scope,
        };
        (stored, issued)
    }

    /// A new refresh family for `client`, if it may use refresh tokens.
    pub(crate) fn new_family(client: &Client) -> Option<String> {
        client
            .grant_types
            .allows(GrantType::RefreshToken)
            .then(stamped_identifier)
    }

    /// Issues an access token (and a refresh token, as `refresh` says) to `client`.
    pub(crate) async fn issue_token(
        &self,
        client: &Client,
        user_id: Option<i64>,
        scope: ScopeList,
        code_id: Option<i64>,
        refresh: Refresh,
    ) -> ServerResult<IssuedToken> {
        let (family, rotating) = match refresh {
            Refresh::None => (None, None),
            Refresh::New => (Self::new_family(client), None),
            Refresh::Rotate { old_id, family } => (Some(family), Some(old_id)),
        };
        let (mut new, issued) = self.new_token(client, user_id, scope, family.clone());
        new.code_id = code_id;
        match rotating {
            None => {
                self.store().insert_token(new).await?;
            }
            Some(old_id) => {
                if self.store().rotate_token(old_id, new).await?.is_none() {
                    // Another request rotated it first: a replay.
                    if let Some(family) = &family {
                        self.store().revoke_family(family).await?;
                    }
                    return Err(
                        OAuthError::invalid_grant("Refresh token has already been used").into(),
                    );
                }
            }
        }
        Ok(issued)
    }

    /// Issues a token to `client` outside any grant, as an operator does from the admin
    /// site: for the user `user_id`, or for the client itself when `None`. The scope follows
    /// the rules of a token request (an empty `scope` means every scope the client may
    /// have, when it is restricted); a refresh token comes with a user's token when the
    /// client may refresh, never with the client's own (RFC 6749 §4.4.3).
    pub async fn issue_token_manually(
        &self,
        client: &Client,
        user_id: Option<i64>,
        scope: ScopeList,
    ) -> ServerResult<IssuedToken> {
        if user_id.is_none() && client.client_type == ClientType::Public {
            return Err(OAuthError::unauthorized_client(
                "A public client cannot hold a token of its own: choose a user",
            )
            .into());
        }
        let (available, restricted) = self.available_scopes(client).await?;
        let requested = (!scope.is_empty()).then_some(scope);
        let scope = oauthost_core::scope::grant(requested.as_ref(), &available, restricted)?;
        let refresh = if user_id.is_some() {
            Refresh::New
        } else {
            Refresh::None
        };
        self.issue_token(client, user_id, scope, None, refresh)
            .await
    }

    /// The access token `value`, if it is active: known, not revoked, not expired, and its
    /// user (if any) still active. One database query.
    pub async fn check_access_token(&self, value: &str) -> ServerResult<Option<TokenInfo>> {
        let details = self.check_access_token_shared(value).await?;
        Ok(details.map(|details| TokenInfo {
            token: details.token.clone(),
            client_id: details.client_identifier.clone(),
            username: details.username.clone(),
        }))
    }

    /// [`check_access_token`](Self::check_access_token), answering the details as the
    /// token cache shares them: a hit copies nothing.
    pub(crate) async fn check_access_token_shared(
        &self,
        value: &str,
    ) -> ServerResult<Option<Arc<TokenDetails>>> {
        let details = self.access_token_details(&SecretHash::of(value)).await?;
        Ok(details.filter(|details| self.is_active(details, true)))
    }

    /// The token whose access token hashes to `hash`, from the cache of validated tokens
    /// when it is on and has it, else from the store (one query), keeping it when active.
    async fn access_token_details(
        &self,
        hash: &SecretHash,
    ) -> ServerResult<Option<Arc<TokenDetails>>> {
        let Some(cache) = &self.inner.token_cache else {
            return self.read_token_details(hash, false).await;
        };
        let generation = match cache.lookup(hash).await {
            Ok(details) => return Ok(Some(details)),
            Err(generation) => generation,
        };
        let details = self.read_token_details(hash, false).await?;
        if let Some(found) = &details {
            if !found.token.revoked && found.user_active {
                cache.insert(*hash, Arc::clone(found), generation, Instant::now());
            }
        }
        Ok(details)
    }

    /// The token whose access token (or, `by_refresh`, refresh token) hashes to `hash`,
    /// read from the store, in the shared form the token cache keeps.
    async fn read_token_details(
        &self,
        hash: &SecretHash,
        by_refresh: bool,
    ) -> ServerResult<Option<Arc<TokenDetails>>> {
        let details = self.store().find_token_details(hash, by_refresh).await?;
        Ok(details.map(Arc::new))
    }

    /// Whether the token is one a resource server may honour: not revoked, not expired
    /// (when `check_expiry`: a refresh token outlives its access token), its user active.
    fn is_active(&self, details: &TokenDetails, check_expiry: bool) -> bool {
        let token = &details.token;
        !token.revoked && details.user_active && !(check_expiry && token.expires_at <= self.now())
    }

    /// The token `value` names, as an access token or, failing that, a refresh token;
    /// `token_type_hint` only changes which is tried first.
    async fn find_any_token(
        &self,
        value: &str,
        hint: Option<&str>,
    ) -> ServerResult<Option<(Arc<TokenDetails>, bool)>> {
        let hash = SecretHash::of(value);
        let refresh_first = hint == Some("refresh_token");
        for by_refresh in [refresh_first, !refresh_first] {
            let details = if by_refresh {
                self.read_token_details(&hash, true).await?
            } else {
                self.access_token_details(&hash).await?
            };
            if let Some(details) = details {
                return Ok(Some((details, by_refresh)));
            }
        }
        Ok(None)
    }

    /// Token revocation (RFC 7009). Unknown tokens are not an error; a token of another
    /// client is refused. Revoking a refresh token revokes its whole family.
    pub async fn revoke(
        &self,
        params: &Params,
        credentials: &ClientCredentials,
    ) -> ServerResult<()> {
        let client = self.authenticate_client(credentials).await?;
        let value = params.require("token")?;
        // An unknown hint is ignored: both kinds are searched anyway (RFC 7009 §2.1).
        let hint = params.get("token_type_hint")?;
        let Some((details, was_refresh)) = self.find_any_token(value, hint).await? else {
            return Ok(());
        };
        let token = &details.token;
        if token.client_id != client.id {
            return Err(
                OAuthError::unauthorized_client("The token was issued to another client").into(),
            );
        }
        match (&token.refresh_family, was_refresh) {
            (Some(family), true) => {
                self.store().revoke_family(family).await?;
            }
            _ => {
                self.store().revoke_token(token.id).await?;
            }
        }
        Ok(())
    }

    /// Token introspection (RFC 7662), for confidential clients (resource servers).
    pub async fn introspect(
        &self,
        params: &Params,
        credentials: &ClientCredentials,
    ) -> ServerResult<Introspection> {
        let client = self.authenticate_client(credentials).await?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::unauthorized_client(
                "Only confidential clients may introspect tokens",
            )
            .into());
        }
        let value = params.require("token")?;
        let hint = params.get("token_type_hint")?;
        let Some((details, was_refresh)) = self.find_any_token(value, hint).await? else {
            return Ok(Introspection::inactive());
        };
        if !self.is_active(&details, !was_refresh) {
            return Ok(Introspection::inactive());
        }
        let token = &details.token;
        Ok(Introspection {
            active: true,
            scope: Some(token.scopes.to_string()),
            client_id: Some(details.client_identifier.clone()),
            username: details.username.clone(),
            token_type: Some("Bearer"),
            // A refresh token does not expire with its access token.
            exp: (!was_refresh).then(|| token.expires_at.unix_timestamp()),
            iat: Some(token.issued_at.unix_timestamp()),
        })
    }
}
