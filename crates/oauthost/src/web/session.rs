//! Server-side sessions for the login and consent pages, and their CSRF tokens.
//!
//! The cookie carries a 256-bit random id; the database keeps the session under the id's
//! SHA-256 hash, so that a stolen database holds no usable session. The cookie is
//! `HttpOnly`, `SameSite=Lax`, and `Secure` on https. The id is renewed at login.

use axum::{
    extract::FromRequestParts,
    http::request::Parts,
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use oauthost_core::secret::{random_identifier, Secret};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{responses, security::Connection, WebState};
use crate::{
    server::{seconds, Oauthost, ServerResult},
    store::SessionRecord,
};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "oauthost_session";
/// The form field carrying the CSRF token (Django's name, so seed templates keep working).
pub(crate) const CSRF_FIELD: &str = "csrfmiddlewaretoken";
/// How many authorization requests may wait for a decision in one session.
const MAX_PENDING: usize = 8;

/// An authorization request shown on a consent page, waiting for the user's decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Random id, posted back by the consent form.
    pub(crate) id: String,
    /// The request's parameters, validated again when the decision comes.
    pub(crate) params: Vec<(String, String)>,
}

/// A message shown once, on the next page (the admin site's "saved", "revoked"...).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Flash {
    /// `success` or `error`: how the page styles it.
    pub(crate) level: &'static str,
    /// The text.
    pub(crate) message: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionData {
    user_id: Option<i64>,
    username: Option<String>,
    csrf_token: Option<String>,
    pending: Vec<Pending>,
    #[serde(default)]
    flashes: Vec<StoredFlash>,
    /// A fingerprint of the user's password hash at login: a new password ends the session.
    #[serde(default)]
    auth: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredFlash {
    error: bool,
    message: String,
}

/// One browser's session, loaded for a request and saved with its response.
///
/// As an extractor, it loads the session named by the request's cookie (or starts an empty
/// one); [`Session::respond`] saves it and sets the cookie on the response.
#[derive(Debug)]
pub(crate) struct Session {
    id: Option<Secret>,
    data: SessionData,
    changed: bool,
    renew: bool,
    end: bool,
    /// Whether the request came over https: the cookie is `Secure` then.
    secure: bool,
    /// The request's cookies, against which the response's changes are computed.
    jar: CookieJar,
}

impl FromRequestParts<WebState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let secure = parts
            .extensions
            .get::<Connection>()
            .is_some_and(|connection| connection.secure);
        let jar = CookieJar::from_headers(&parts.headers);
        Self::load(&state.server, jar, secure)
            .await
            .map_err(responses::failure_page)
    }
}

impl Session {
    async fn load(server: &Oauthost, jar: CookieJar, secure: bool) -> ServerResult<Self> {
        let cookie = jar.get(COOKIE_NAME).map(|c| c.value().to_owned());
        let mut session = Self {
            id: None,
            data: SessionData::default(),
            changed: false,
            renew: false,
            end: false,
            secure,
            jar,
        };
        if let Some(cookie) = cookie {
            let id = Secret::new(cookie);
            let now = server.now();
            if let Some(record) = server.store().load_session(&id.hash(), now).await? {
                if let Ok(data) = serde_json::from_slice(&record.data) {
                    session.id = Some(id);
                    session.data = data;
                }
            }
        }
        if !session.login_still_valid(server).await? {
            // Deactivated, deleted, or given a new password since: logged out, as in
            // Django, so that resetting a password ends every session of the old one.
            session.data.user_id = None;
            session.data.username = None;
            session.data.auth = None;
            session.data.pending.clear();
            session.changed = true;
        }
        Ok(session)
    }

    /// Whether the session's login, if any, still stands: its user exists, is active, and
    /// has the password it logged in with.
    async fn login_still_valid(&self, server: &Oauthost) -> ServerResult<bool> {
        let (Some(user_id), Some(username)) = (self.data.user_id, &self.data.username) else {
            return Ok(true);
        };
        let Some((user, hash)) = server.store().find_user_credentials(username).await? else {
            return Ok(false);
        };
        let matches = self.data.auth.as_ref().is_some_and(|auth| {
            bool::from(
                auth.as_bytes()
                    .ct_eq(login_fingerprint(hash.as_deref()).as_bytes()),
            )
        });
        Ok(user.id == user_id && user.is_active && matches)
    }

    /// Saves the session and sets its cookie on `response`.
    pub(crate) async fn respond(self, state: &WebState, response: Response) -> Response {
        match self.save(&state.server).await {
            Ok(jar) => (jar, response).into_response(),
            Err(error) => responses::failure_page(error),
        }
    }

    /// The logged-in user's database key and username.
    pub(crate) fn user(&self) -> Option<(i64, &str)> {
        Some((self.data.user_id?, self.data.username.as_deref()?))
    }

    /// The session's CSRF token, created on first use.
    pub(crate) fn csrf_token(&mut self) -> String {
        if let Some(token) = &self.data.csrf_token {
            return token.clone();
        }
        let token = random_identifier();
        self.data.csrf_token = Some(token.clone());
        self.changed = true;
        token
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, presented: Option<&str>) -> bool {
        match (&self.data.csrf_token, presented) {
            (Some(expected), Some(presented)) => {
                expected.as_bytes().ct_eq(presented.as_bytes()).into()
            }
            _ => false,
        }
    }

    /// Records a login of the user with this password hash: the session id and CSRF
    /// token are renewed, against fixation.
    pub(crate) fn log_in(&mut self, user_id: i64, username: &str, password_hash: Option<&str>) {
        self.data.user_id = Some(user_id);
        self.data.username = Some(username.to_owned());
        self.data.auth = Some(login_fingerprint(password_hash));
        self.data.csrf_token = Some(random_identifier());
        self.renew = true;
        self.changed = true;
    }

    /// Ends the session: its record is deleted and its cookie removed.
    pub(crate) fn log_out(&mut self) {
        self.end = true;
    }

    /// Keeps `params` as a request waiting for a decision and returns its id. The oldest
    /// are forgotten past a few.
    pub(crate) fn add_pending(&mut self, params: Vec<(String, String)>) -> String {
        let id = random_identifier();
        self.data.pending.push(Pending {
            id: id.clone(),
            params,
        });
        let excess = self.data.pending.len().saturating_sub(MAX_PENDING);
        self.data.pending.drain(..excess);
        self.changed = true;
        id
    }

    /// Removes and returns the pending request chosen by `choose`: a decision is used once.
    pub(crate) fn take_pending(&mut self, choose: impl Fn(&Pending) -> bool) -> Option<Pending> {
        let index = self.data.pending.iter().rposition(choose)?;
        self.changed = true;
        Some(self.data.pending.remove(index))
    }

    /// Keeps a message for the next page; `error` styles it as a failure.
    pub(crate) fn flash(&mut self, error: bool, message: impl Into<String>) {
        self.data.flashes.push(StoredFlash {
            error,
            message: message.into(),
        });
        self.changed = true;
    }

    /// The messages kept for this page; they are shown once.
    pub(crate) fn take_flashes(&mut self) -> Vec<Flash> {
        if self.data.flashes.is_empty() {
            return Vec::new();
        }
        self.changed = true;
        self.data
            .flashes
            .drain(..)
            .map(|flash| Flash {
                level: if flash.error { "error" } else { "success" },
                message: flash.message,
            })
            .collect()
    }

    /// Writes the session if it changed; the cookie to set or remove.
    async fn save(self, server: &Oauthost) -> ServerResult<CookieJar> {
        let jar = self.jar;
        let secure = self.secure;
        let store = server.store();
        if self.end {
            if let Some(id) = &self.id {
                store.delete_session(&id.hash()).await?;
            }
            return Ok(jar.remove(Cookie::build(COOKIE_NAME).path("/")));
        }
        if !self.changed {
            return Ok(jar);
        }
        let id = match (self.id, self.renew) {
            (Some(old), true) => {
                store.delete_session(&old.hash()).await?;
                Secret::generate()
            }
            (Some(id), false) => id,
            (None, _) => Secret::generate(),
        };
        let data = serde_json::to_vec(&self.data).unwrap_or_default();
        store
            .save_session(&SessionRecord {
                id_hash: id.hash(),
                data,
                expires_at: server.now() + seconds(server.settings().session_lifetime),
            })
            .await?;
        let cookie = Cookie::build((COOKIE_NAME, id.expose().to_owned()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure);
        Ok(jar.add(cookie))
    }
}

/// What a session keeps of the password hash it logged in with: its SHA-256, in hex.
fn login_fingerprint(password_hash: Option<&str>) -> String {
    let hash = Secret::new(password_hash.unwrap_or_default().to_owned()).hash();
    hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
