//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3).

use oauthost_core::error::OAuthError;

use super::{Oauthost, ServerResult};
use crate::store::Client;

/// How a client presented itself.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// Identifier and secret from `Authorization: Basic`, already form-decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` from the body.
    pub body_id: Option<String>,
    /// `client_secret` from the body.
    pub body_secret: Option<String>,
}

impl ClientCredentials {
    /// Whether HTTP Basic was used (a failure then answers with `WWW-Authenticate: Basic`).
    pub fn used_basic(&self) -> bool {
        self.basic.is_some()
    }
}

/// The one answer to every failed client authentication: it does not tell an unknown
/// client from a wrong secret.
fn failed() -> OAuthError {
    OAuthError::invalid_client("Client authentication failed")
}

impl Oauthost {
    /// The client these credentials authenticate: a client with a secret must present it
    /// (compared in constant time); a client without one is identified by its id alone.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> ServerResult<Client> {
        let (id, secret) = match credentials {
            ClientCredentials {
                basic: Some(_),
                body_secret: Some(_),
                ..
            } => {
                return Err(OAuthError::invalid_request(
                    "Use one client authentication method: HTTP Basic or client_secret in the body, not both",
                )
                .into())
            }
            ClientCredentials {
                basic: Some((id, _)),
                body_id: Some(body_id),
                ..
            } if body_id != id => {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in HTTP Basic",
                )
                .into())
            }
            ClientCredentials {
                basic: Some((id, secret)),
                ..
            } => (id, Some(secret.as_str()).filter(|s| !s.is_empty())),
            ClientCredentials {
                basic: None,
                body_id: Some(id),
                body_secret,
            } => (id, body_secret.as_deref()),
            ClientCredentials { basic: None, .. } => {
                return Err(OAuthError::invalid_client(
                    "Client authentication required: send client_id (and client_secret) or HTTP Basic",
                )
                .into())
            }
        };
        let client = self.find_client_cached(id).await?.ok_or_else(failed)?;
        match (&client.secret_hash, secret) {
            (Some(hash), Some(secret)) if hash.matches(secret) => Ok(client),
            (None, None) => Ok(client),
            _ => Err(failed().into()),
        }
    }

    /// The client called `identifier`, from the client cache when it is on and has it.
    async fn find_client_cached(&self, identifier: &str) -> ServerResult<Option<Client>> {
        let Some(cache) = &self.inner.client_cache else {
            return Ok(self.store().find_client(identifier).await?);
        };
        let generation = match cache.lookup(identifier).await {
            Ok(client) => return Ok(Some(client)),
            Err(generation) => generation,
        };
        let client = self.store().find_client(identifier).await?;
        if let Some(found) = &client {
            cache.insert(found.clone(), generation, std::time::Instant::now());
        }
        Ok(client)
    }
}
