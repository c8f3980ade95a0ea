//! Checking a user's password with throttling, for the login page and the password grant
//! alike: failures are counted per username and per client address, in the database, so
//! that every instance sharing it enforces the same limits.

use std::net::IpAddr;

use super::{seconds, Oauthost, ServerResult};
use crate::store::User;

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The credentials are right.
    Success(User),
    /// Unknown user, wrong password or inactive user: one answer for all three.
    Failed,
    /// Too many failures: refused without checking, for this many more minutes.
    Locked {
        /// Minutes until the lock ends, rounded up.
        minutes: i64,
    },
}

impl Oauthost {
    /// Checks `username` and `password` unless the username or `client_addr` is locked out,
    /// and counts a failure against both.
    pub async fn log_in(
        &self,
        username: &str,
        password: &str,
        client_addr: Option<IpAddr>,
    ) -> ServerResult<LoginOutcome> {
        let store = self.store();
        let throttle = &self.settings().login_throttle;
        let now = self.now();
        let user_key = format!("user:{username}");
        let addr_key = client_addr.map(|addr| format!("addr:{addr}"));

        let mut locked = store.login_locked_until(&user_key, now).await?;
        if let (None, Some(key)) = (locked, &addr_key) {
            locked = store.login_locked_until(key, now).await?;
        }
        if let Some(until) = locked {
            let minutes = ((until - now).whole_seconds() + 59) / 60;
            return Ok(LoginOutcome::Locked { minutes });
        }

        if let Some(user) = self
            .authenticator()
            .authenticate(username, password)
            .await?
        {
            store.clear_login_failures(&user_key).await?;
            return Ok(LoginOutcome::Success(user));
        }
        let window_start = now - seconds(throttle.window);
        let lock_until = now + seconds(throttle.lockout);
        store
            .record_login_failure(
                &user_key,
                now,
                window_start,
                throttle.max_failures_per_user,
                lock_until,
            )
            .await?;
        if let Some(key) = &addr_key {
            store
                .record_login_failure(
                    key,
                    now,
                    window_start,
                    throttle.max_failures_per_address,
                    lock_until,
                )
                .await?;
        }
        tracing::warn!(user = %username.escape_debug(), address = ?client_addr, "failed login");
        Ok(LoginOutcome::Failed)
    }
}
