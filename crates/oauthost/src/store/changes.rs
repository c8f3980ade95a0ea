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
//!
//!   A notification reaches the other instances a moment after its transaction commits.
//!   A cache that must not answer in that moment (`Settings::strict_revocation`) first
//!   waits until the feed has [caught up](ChangeFeed::caught_up): the listening connection
//!   makes one round trip to the database, and PostgreSQL sends a listener every
//!   notification already committed before it answers. Concurrent requests share a round
//!   trip; a request waits for one that began after it arrived.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use tokio::sync::{watch, Notify};

/// How long a cache hit waits for the feed to catch up before it is treated as a miss.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// For a feed told asynchronously (PostgreSQL's); `None` where changes are published
    /// before their writer goes on (SQLite's hooks).
    fence: Option<Fence>,
}

/// Rounds that tell waiters the feed has published every change committed before the
/// round began.
struct Fence {
    rounds: Mutex<Rounds>,
    /// Wakes the listener when a round is wanted.
    wanted: Notify,
    /// The last round that ended.
    ended: watch::Sender<u64>,
}

#[derive(Default)]
struct Rounds {
    /// The last round begun.
    begun: u64,
    /// Whether someone waits for a round not begun yet.
    wanted: bool,
}

impl Default for Fence {
    fn default() -> Self {
        Self {
            rounds: Mutex::default(),
            wanted: Notify::new(),
            ended: watch::Sender::new(0),
        }
    }
}

impl Fence {
    fn rounds(&self) -> std::sync::MutexGuard<'_, Rounds> {
        self.rounds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// A feed, live or not, whose changes are published before their writer goes on.
    pub fn new(live: bool) -> Self {
        let feed = Self::default();
        feed.inner.live.store(live, Ordering::SeqCst);
        feed
    }

    /// A feed, not live yet, told of changes some time after they commit: whoever tells it
    /// must also answer [`next_round`](Self::next_round), so that
    /// [`caught_up`](Self::caught_up) can wait for it.
    pub fn asynchronous() -> Self {
        Self {
            inner: Arc::new(FeedInner {
                fence: Some(Fence::default()),
                ..FeedInner::default()
            }),
        }
    }

    /// Whether changes may be published some time after they commit (an
    /// [asynchronous](Self::asynchronous) feed), so that waiting until the feed has
    /// [caught up](Self::caught_up) can tell something.
    pub fn publishes_late(&self) -> bool {
        self.inner.fence.is_some()
    }

    /// Waits until every change committed before the call has been published; false when
    /// that cannot be known (the feed is not live, or did not catch up within two
    /// seconds), and a cache must read the database instead. At once for a feed whose
    /// changes are published before their writer goes on.
    pub async fn caught_up(&self) -> bool {
        let Some(fence) = &self.inner.fence else {
            return self.is_live();
        };
        let mut ended = fence.ended.subscribe();
        let round = {
            let mut rounds = fence.rounds();
            rounds.wanted = true;
            rounds.begun + 1
        };
        // Checked once the round is wanted: a feed that stops being live from now on ends it.
        if !self.is_live() {
            return false;
        }
        fence.wanted.notify_one();
        let waited = tokio::time::timeout(CATCH_UP_TIMEOUT, ended.wait_for(|&r| r >= round));
        matches!(waited.await, Ok(Ok(_))) && self.is_live()
    }

    /// For whoever tells an [asynchronous](Self::asynchronous) feed: waits until a
    /// [`caught_up`](Self::caught_up) call wants a round, and begins it. Publish everything
    /// committed until now, then call [`end_round`](Self::end_round) with its number.
    /// Never ends for a feed that is not asynchronous.
    pub async fn next_round(&self) -> u64 {
        let Some(fence) = &self.inner.fence else {
            return std::future::pending().await;
        };
        loop {
            {
                let mut rounds = fence.rounds();
                if rounds.wanted {
                    rounds.wanted = false;
                    rounds.begun += 1;
                    return rounds.begun;
                }
            }
            fence.wanted.notified().await;
        }
    }

    /// Ends round `round` (see [`next_round`](Self::next_round)), and every round before.
    /// A feed that stops being live ends its rounds too: waiters then find it not live.
    pub fn end_round(&self, round: u64) {
        if let Some(fence) = &self.inner.fence {
            fence.ended.send_if_modified(|ended| {
                let later = round > *ended;
                *ended = (*ended).max(round);
                later
            });
        }
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
        if !live {
            if let Some(fence) = &self.inner.fence {
                // Ends, unserved, the round anyone waits for, who then finds the feed not live.
                let begun = {
                    let mut rounds = fence.rounds();
                    rounds.wanted = false;
                    rounds.begun += 1;
                    rounds.begun
                };
                self.end_round(begun);
            }
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

    #[tokio::test]
    async fn a_feed_published_before_its_writer_goes_on_is_caught_up_while_live() {
        assert!(ChangeFeed::new(true).caught_up().await);
        assert!(!ChangeFeed::new(false).caught_up().await);
    }

    #[tokio::test]
    async fn catching_up_waits_for_a_round_begun_after_the_call() {
        let feed = ChangeFeed::asynchronous();
        feed.set_live(true);
        let first = tokio::spawn({
            let feed = feed.clone();
            async move { feed.caught_up().await }
        });
        let round = feed.next_round().await;
        // Wanted while the first round runs: that round may have missed its changes.
        let second = tokio::spawn({
            let feed = feed.clone();
            async move { feed.caught_up().await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        feed.end_round(round);
        assert!(first.await.unwrap());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!second.is_finished(), "the running round ended its wait");
        let next = feed.next_round().await;
        assert!(next > round);
        feed.end_round(next);
        assert!(second.await.unwrap());
    }

    #[tokio::test]
    async fn a_feed_that_stops_being_live_ends_the_wait_unconfirmed() {
        let feed = ChangeFeed::asynchronous();
        assert!(!feed.caught_up().await, "not live yet");
        feed.set_live(true);
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.caught_up().await }
        });
        let _round = feed.next_round().await;
        feed.set_live(false);
        assert!(!waiting.await.unwrap());
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
