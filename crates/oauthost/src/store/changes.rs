//! Change notifications: how a cache of validated tokens learns, at once, that a token was
//! revoked, rotated or deleted, or that a user, client or scope changed.
//!
//! Each backend watches its database rather than trusting every write path to report, so
//! that writes added later (the admin site, an application's own SQL) are seen too:
//!
//! - **SQLite**: every pooled connection has an update hook and a commit hook. An `UPDATE`
//!   or `DELETE` of a token row, and of any user or client row, and any write to the
//!   scopes or a client's scopes, is published when its
//!   transaction commits, and once more just after (a check racing the commit could
//!   otherwise cache the row as it was). Writes from another process (the command line)
//!   are not seen: they reach a running server's cache only through its time-to-live.
//! - **PostgreSQL**: triggers (migration 2) send `NOTIFY oauthost_changes` with the token's
//!   id, or `*` for a user, client or scope change (migration 4 adds the scopes) or a change
//!   of many tokens at once; each
//!   instance listens on a connection of its own. While that connection is down the feed
//!   is not [live](ChangeFeed::is_live) and caches must not be trusted.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex, Weak,
};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The token with this database key was updated or deleted.
    Token(i64),
    /// Possibly anything: a user or client changed, many tokens changed, or notifications
    /// may have been missed.
    Everything,
}

/// Something told about changes, such as a token cache.
pub trait ChangeListener: Send + Sync {
    /// Called once per change, on whatever thread saw it: must be quick and never block
    /// on I/O.
    fn changed(&self, change: Change);
}

/// Where a store publishes its changes. Cheap to clone.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    inner: Arc<FeedInner>,
}

#[derive(Default)]
struct FeedInner {
    listeners: Mutex<Vec<Weak<dyn ChangeListener>>>,
    live: AtomicBool,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// A feed, live or not.
    pub fn new(live: bool) -> Self {
        let feed = Self::default();
        feed.inner.live.store(live, Ordering::SeqCst);
        feed
    }

    /// Tells `listener` about every change from now on, for as long as it lives.
    pub fn subscribe(&self, listener: Weak<dyn ChangeListener>) {
        if let Ok(mut listeners) = self.inner.listeners.lock() {
            listeners.push(listener);
        }
    }

    /// Tells every listener about `change`.
    pub fn publish(&self, change: Change) {
        let listeners: Vec<Arc<dyn ChangeListener>> = match self.inner.listeners.lock() {
            Ok(mut listeners) => {
                listeners.retain(|l| l.strong_count() > 0);
                listeners.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => return,
        };
        for listener in listeners {
            listener.changed(change);
        }
    }

    /// Whether every change is being delivered. A cache must not answer from memory while
    /// the feed is not live.
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Marks the feed live or not; any transition tells listeners that everything may
    /// have changed.
    pub fn set_live(&self, live: bool) {
        let was = self.inner.live.swap(live, Ordering::SeqCst);
        if was != live {
            self.publish(Change::Everything);
        }
    }
}

/// What a write to `table`'s row `id` changes for the caches: an update or deletion of a
/// token, user or client row, or any write to the scopes a client may be granted (a new
/// scope widens what an unrestricted client may have).
pub(crate) fn change_of(table: &str, id: i64, inserted: bool) -> Option<Change> {
    match (table, inserted) {
        ("oauthost_tokens", false) => Some(Change::Token(id)),
        ("oauthost_users" | "oauthost_clients", false)
        | ("oauthost_scopes" | "oauthost_client_scopes", _) => Some(Change::Everything),
        _ => None,
    }
}

/// Reads a notification payload of the PostgreSQL triggers: a token id, or `*`.
pub(crate) fn parse_notification(payload: &str) -> Change {
    payload
        .parse::<i64>()
        .map_or(Change::Everything, Change::Token)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(Mutex<Vec<Change>>);

    impl ChangeListener for Recorder {
        fn changed(&self, change: Change) {
            self.0.lock().unwrap().push(change);
        }
    }

    #[test]
    fn publishes_to_live_listeners_and_reports_liveness_changes() {
        let feed = ChangeFeed::new(false);
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        let weak: Weak<dyn ChangeListener> = Arc::downgrade(&recorder) as _;
        feed.subscribe(weak);
        feed.publish(Change::Token(7));
        feed.set_live(true);
        feed.set_live(true);
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [Change::Token(7), Change::Everything]
        );
        drop(recorder);
        feed.publish(Change::Everything);
    }

    #[test]
    fn reads_payloads_and_tables() {
        assert_eq!(parse_notification("42"), Change::Token(42));
        assert_eq!(parse_notification("*"), Change::Everything);
        assert_eq!(
            change_of("oauthost_tokens", 3, false),
            Some(Change::Token(3))
        );
        assert_eq!(change_of("oauthost_tokens", 3, true), None);
        assert_eq!(
            change_of("oauthost_users", 3, false),
            Some(Change::Everything)
        );
        assert_eq!(change_of("oauthost_clients", 3, true), None);
        assert_eq!(
            change_of("oauthost_scopes", 3, true),
            Some(Change::Everything)
        );
        assert_eq!(
            change_of("oauthost_client_scopes", 3, false),
            Some(Change::Everything)
        );
        assert_eq!(change_of("oauthost_sessions", 3, false), None);
    }
}
