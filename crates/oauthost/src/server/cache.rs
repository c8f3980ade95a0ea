//! A cache of validated access tokens, so that the bearer check of a token seen recently
//! costs no database round trip.
//!
//! Only tokens found active are kept, keyed by the hash of the access token, with what the
//! check read (token, client identifier, user). Expiry is checked again on every hit. An
//! entry is dropped at once when the store's [`ChangeFeed`] reports a change to its token,
//! and every entry when a user or client changes; while the feed is not live (PostgreSQL's
//! listening connection is down) nothing is answered from memory. With
//! `Settings::strict_revocation`, a hit is trusted only once the feed has
//! [caught up](ChangeFeed::caught_up) with every change committed before the lookup (at once
//! on SQLite; one shared round trip on PostgreSQL). The time-to-live bounds
//! how stale an entry can be should a change go unseen (a write by another process to a
//! SQLite file); see the deployment guide.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use oauthost_core::{scope::ScopeList, secret::SecretHash};

use crate::store::{
    changes::{Change, ChangeFeed, ChangeListener},
    Client, TokenDetails,
};

/// Entries kept at most; a full cache is emptied and fills again.
const DEFAULT_CAPACITY: usize = 100_000;

/// The cache; see the module's documentation.
pub(crate) struct TokenCache {
    ttl: Duration,
    capacity: usize,
    feed: ChangeFeed,
    /// Whether a hit waits for the feed to catch up (`Settings::strict_revocation`, with a
    /// feed that publishes late: SQLite's never does).
    strict: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every change: a lookup that began before a change may not store its
    /// result, which it may have read before the change was committed.
    generation: u64,
    /// Shared with the requests that hit them: a hit clones a pointer, not the token.
    entries: HashMap<SecretHash, (Arc<TokenDetails>, Instant)>,
    hashes: HashMap<i64, SecretHash>,
}

impl TokenCache {
    /// A cache whose entries live at most `ttl`, told of changes by `feed`, whose hits
    /// wait for the feed to catch up when `strict`.
    pub(crate) fn new(ttl: Duration, feed: ChangeFeed, strict: bool) -> Arc<Self> {
        Self::with_capacity(ttl, feed, strict, DEFAULT_CAPACITY)
    }

    fn with_capacity(ttl: Duration, feed: ChangeFeed, strict: bool, capacity: usize) -> Arc<Self> {
        let cache = Arc::new(Self {
            ttl,
            capacity,
            strict: strict && feed.publishes_late(),
            feed: feed.clone(),
            state: Mutex::default(),
        });
        let listener: Arc<dyn ChangeListener> = cache.clone();
        feed.subscribe(Arc::downgrade(&listener));
        cache
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-done that matters: an entry
        // is either there or not.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached details of the token hashing to `hash`, once the feed has caught up
    /// with every change committed before the call; or the generation to hand to
    /// [`insert`](Self::insert) after reading the token from the store.
    pub(crate) async fn lookup(&self, hash: &SecretHash) -> Result<Arc<TokenDetails>, u64> {
        confirmed(
            self.strict.then_some(&self.feed),
            || self.get(hash, Instant::now()),
            || self.state().generation,
        )
        .await
    }

    /// What [`lookup`](Self::lookup) finds at `now`, without waiting for the feed.
    fn get(&self, hash: &SecretHash, now: Instant) -> Result<Arc<TokenDetails>, u64> {
        let mut state = self.state();
        if !self.feed.is_live() {
            return Err(state.generation);
        }
        match state.entries.get(hash) {
            Some((details, stored)) if now.duration_since(*stored) < self.ttl => {
                Ok(Arc::clone(details))
            }
            Some((details, _)) => {
                let id = details.token.id;
                state.entries.remove(hash);
                state.hashes.remove(&id);
                Err(state.generation)
            }
            None => Err(state.generation),
        }
    }

    /// Keeps `details`, read from the store after [`get`](Self::get) gave `generation`,
    /// unless something changed since.
    pub(crate) fn insert(
        &self,
        hash: SecretHash,
        details: Arc<TokenDetails>,
        generation: u64,
        now: Instant,
    ) {
        let mut state = self.state();
        if state.generation != generation || !self.feed.is_live() {
            return;
        }
        if state.entries.len() >= self.capacity {
            state.entries.clear();
            state.hashes.clear();
        }
        state.hashes.insert(details.token.id, hash);
        state.entries.insert(hash, (details, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().entries.len()
    }
}

impl ChangeListener for TokenCache {
    fn changed(&self, change: Change) {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        match change {
            Change::Token(id) => {
                if let Some(hash) = state.hashes.remove(&id) {
                    state.entries.remove(&hash);
                }
            }
            Change::Everything => {
                state.entries.clear();
                state.hashes.clear();
            }
        }
    }
}

/// Clients found by their public identifier, and the scopes each may be granted, kept for
/// the same time as tokens: client authentication at `/token/` and `/introspect/`, and the
/// scope of a `client_credentials` token, then cost no query. Any update or deletion of a
/// client (a new secret, an edit, a deletion) or any write to the scopes clears it, as it
/// clears the token cache.
pub(crate) struct ClientCache {
    ttl: Duration,
    feed: ChangeFeed,
    /// Whether a hit waits for the feed to catch up (`Settings::strict_revocation`, with a
    /// feed that publishes late: SQLite's never does).
    strict: bool,
    state: Mutex<ClientState>,
}

#[derive(Default)]
struct ClientState {
    generation: u64,
    entries: HashMap<String, (Client, Instant)>,
    scopes: HashMap<i64, (AvailableScopes, Instant)>,
}

/// The scopes a client may be granted, and whether it is restricted to them.
pub(crate) type AvailableScopes = (ScopeList, bool);

impl ClientCache {
    pub(crate) fn new(ttl: Duration, feed: ChangeFeed, strict: bool) -> Arc<Self> {
        let cache = Arc::new(Self {
            ttl,
            strict: strict && feed.publishes_late(),
            feed: feed.clone(),
            state: Mutex::default(),
        });
        let listener: Arc<dyn ChangeListener> = cache.clone();
        feed.subscribe(Arc::downgrade(&listener));
        cache
    }

    fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client called `identifier`, once the feed has caught up with every change
    /// committed before the call; or the generation to hand to [`insert`](Self::insert)
    /// after reading it from the store.
    pub(crate) async fn lookup(&self, identifier: &str) -> Result<Client, u64> {
        confirmed(
            self.strict.then_some(&self.feed),
            || self.get(identifier, Instant::now()),
            || self.state().generation,
        )
        .await
    }

    /// What [`lookup`](Self::lookup) finds at `now`, without waiting for the feed.
    fn get(&self, identifier: &str, now: Instant) -> Result<Client, u64> {
        let state = self.state();
        match state.entries.get(identifier) {
            Some((client, stored))
                if self.feed.is_live() && now.duration_since(*stored) < self.ttl =>
            {
                Ok(client.clone())
            }
            _ => Err(state.generation),
        }
    }

    /// Keeps `client`, unless a change was seen since its read began (`generation`).
    pub(crate) fn insert(&self, client: Client, generation: u64, now: Instant) {
        let mut state = self.state();
        if state.generation != generation || !self.feed.is_live() {
            return;
        }
        if state.entries.len() >= DEFAULT_CAPACITY {
            state.entries.clear();
        }
        state
            .entries
            .insert(client.identifier.clone(), (client, now));
    }

    /// The scopes the client with key `client_id` may be granted, once the feed has caught
    /// up with every change committed before the call; or the generation to hand to
    /// [`insert_scopes`](Self::insert_scopes) after reading them from the store.
    pub(crate) async fn lookup_scopes(&self, client_id: i64) -> Result<AvailableScopes, u64> {
        confirmed(
            self.strict.then_some(&self.feed),
            || self.scopes(client_id, Instant::now()),
            || self.state().generation,
        )
        .await
    }

    /// What [`lookup_scopes`](Self::lookup_scopes) finds at `now`, without waiting for the
    /// feed.
    fn scopes(&self, client_id: i64, now: Instant) -> Result<AvailableScopes, u64> {
        let state = self.state();
        match state.scopes.get(&client_id) {
            Some((scopes, stored))
                if self.feed.is_live() && now.duration_since(*stored) < self.ttl =>
            {
                Ok(scopes.clone())
            }
            _ => Err(state.generation),
        }
    }

    /// Keeps a client's `scopes`, unless a change was seen since their read began.
    pub(crate) fn insert_scopes(
        &self,
        client_id: i64,
        scopes: AvailableScopes,
        generation: u64,
        now: Instant,
    ) {
        let mut state = self.state();
        if state.generation != generation || !self.feed.is_live() {
            return;
        }
        if state.scopes.len() >= DEFAULT_CAPACITY {
            state.scopes.clear();
        }
        state.scopes.insert(client_id, (scopes, now));
    }
}

impl ChangeListener for ClientCache {
    fn changed(&self, change: Change) {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        // A token's change leaves clients as they were; anything else may be a client's.
        if change == Change::Everything {
            state.entries.clear();
            state.scopes.clear();
        }
    }
}

/// A hit of `get`, trusted at once without a feed to wait for, else once `feed` has caught
/// up with every change committed before the call, and read again then (the change may
/// have evicted it); a hit that cannot be confirmed is a miss, with the current
/// `generation`.
async fn confirmed<T>(
    feed: Option<&ChangeFeed>,
    get: impl Fn() -> Result<T, u64>,
    generation: impl Fn() -> u64,
) -> Result<T, u64> {
    let hit = get()?;
    let Some(feed) = feed else {
        return Ok(hit);
    };
    if feed.caught_up().await {
        get()
    } else {
        Err(generation())
    }
}

#[cfg(test)]
mod tests {
    use oauthost_core::scope::ScopeList;
    use time::OffsetDateTime;

    use super::*;
    use crate::store::Token;

    fn details(id: i64) -> TokenDetails {
        TokenDetails {
            token: Token {
                id,
                access_token_hash: SecretHash::of(&id.to_string()),
                refresh_token_hash: None,
                user_id: Some(1),
                client_id: 1,
                code_id: None,
                scopes: ScopeList::default(),
                issued_at: OffsetDateTime::UNIX_EPOCH,
                expires_at: OffsetDateTime::UNIX_EPOCH,
                revoked: false,
                refresh_family: None,
                refresh_rotated: false,
            },
            client_identifier: "c".into(),
            username: Some("alice".into()),
            user_active: true,
        }
    }

    fn cached(cache: &TokenCache, id: i64, now: Instant) {
        let hash = SecretHash::of(&id.to_string());
        let generation = cache.get(&hash, now).unwrap_err();
        cache.insert(hash, Arc::new(details(id)), generation, now);
        assert!(cache.get(&hash, now).is_ok());
    }

    /// Answers one round of `feed`, publishing `change` in it first.
    fn relay_once(feed: &ChangeFeed, change: Option<Change>) -> tokio::task::JoinHandle<()> {
        let feed = feed.clone();
        tokio::spawn(async move {
            let round = feed.next_round().await;
            if let Some(change) = change {
                feed.publish(change);
            }
            feed.end_round(round);
        })
    }

    #[tokio::test]
    async fn a_strict_hit_waits_for_the_changes_committed_before_it() {
        let feed = ChangeFeed::asynchronous();
        feed.set_live(true);
        let cache = TokenCache::new(Duration::from_secs(60), feed.clone(), true);
        let now = Instant::now();
        cached(&cache, 1, now);
        cached(&cache, 2, now);

        // The round brings the revocation of token 1, which was cached when looked up.
        let relay = relay_once(&feed, Some(Change::Token(1)));
        assert!(cache.lookup(&SecretHash::of("1")).await.is_err());
        relay.await.unwrap();
        let relay = relay_once(&feed, None);
        assert!(cache.lookup(&SecretHash::of("2")).await.is_ok());
        relay.await.unwrap();

        // Without strictness a hit is answered at once, with no round.
        let relaxed = TokenCache::new(Duration::from_secs(60), feed.clone(), false);
        cached(&relaxed, 3, now);
        assert!(relaxed.lookup(&SecretHash::of("3")).await.is_ok());
    }

    #[test]
    fn a_token_change_drops_that_token_only() {
        let feed = ChangeFeed::new(true);
        let cache = TokenCache::new(Duration::from_secs(60), feed.clone(), false);
        let now = Instant::now();
        cached(&cache, 1, now);
        cached(&cache, 2, now);
        feed.publish(Change::Token(1));
        assert!(cache.get(&SecretHash::of("1"), now).is_err());
        assert!(cache.get(&SecretHash::of("2"), now).is_ok());
        feed.publish(Change::Everything);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_lookup_that_began_before_a_change_stores_nothing() {
        let feed = ChangeFeed::new(true);
        let cache = TokenCache::new(Duration::from_secs(60), feed.clone(), false);
        let now = Instant::now();
        let hash = SecretHash::of("1");
        let generation = cache.get(&hash, now).unwrap_err();
        // The token is revoked while its row is being read.
        feed.publish(Change::Token(1));
        cache.insert(hash, Arc::new(details(1)), generation, now);
        assert!(cache.get(&hash, now).is_err());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TokenCache::new(Duration::from_secs(5), ChangeFeed::new(true), false);
        let now = Instant::now();
        cached(&cache, 1, now);
        assert!(cache
            .get(&SecretHash::of("1"), now + Duration::from_secs(4))
            .is_ok());
        assert!(cache
            .get(&SecretHash::of("1"), now + Duration::from_secs(5))
            .is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn nothing_is_answered_while_the_feed_is_down() {
        let feed = ChangeFeed::new(true);
        let cache = TokenCache::new(Duration::from_secs(60), feed.clone(), false);
        let now = Instant::now();
        cached(&cache, 1, now);
        feed.set_live(false);
        assert!(cache.get(&SecretHash::of("1"), now).is_err());
        feed.set_live(true);
        assert!(cache.get(&SecretHash::of("1"), now).is_err(), "emptied");
    }

    #[test]
    fn a_full_cache_starts_again() {
        let cache =
            TokenCache::with_capacity(Duration::from_secs(60), ChangeFeed::new(true), false, 2);
        let now = Instant::now();
        cached(&cache, 1, now);
        cached(&cache, 2, now);
        cached(&cache, 3, now);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn clients_stay_until_a_client_or_user_changes() {
        let feed = ChangeFeed::new(true);
        let cache = ClientCache::new(Duration::from_secs(60), feed.clone(), false);
        let now = Instant::now();
        let client = Client {
            id: 1,
            identifier: "app".into(),
            title: "App".into(),
            secret_hash: None,
            client_type: oauthost_core::client::ClientType::Public,
            registrant_id: 1,
            description: String::new(),
            link: None,
            token_lifetime: 60,
            hash_sign_supported: true,
            grant_types: Default::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let generation = cache.get("app", now).unwrap_err();
        cache.insert(client.clone(), generation, now);
        assert_eq!(cache.get("app", now), Ok(client.clone()));
        feed.publish(Change::Token(5));
        assert!(
            cache.get("app", now).is_ok(),
            "a token change keeps clients"
        );
        feed.publish(Change::Everything);
        assert!(cache.get("app", now).is_err());
        // A read that began before a change is not kept.
        let stale = cache.get("app", now).unwrap_err();
        feed.publish(Change::Everything);
        cache.insert(client.clone(), stale, now);
        assert!(cache.get("app", now).is_err());
        let generation = cache.get("app", now).unwrap_err();
        cache.insert(client, generation, now);
        assert!(
            cache.get("app", now + Duration::from_secs(61)).is_err(),
            "expired"
        );
    }

    #[test]
    fn a_clients_scopes_stay_until_something_other_than_a_token_changes() {
        let feed = ChangeFeed::new(true);
        let cache = ClientCache::new(Duration::from_secs(60), feed.clone(), false);
        let now = Instant::now();
        let scopes: AvailableScopes = ("a b".parse::<ScopeList>().unwrap(), true);
        let generation = cache.scopes(7, now).unwrap_err();
        cache.insert_scopes(7, scopes.clone(), generation, now);
        assert_eq!(cache.scopes(7, now), Ok(scopes.clone()));
        assert!(
            cache.scopes(8, now).is_err(),
            "another client's are not known"
        );
        feed.publish(Change::Token(1));
        assert!(cache.scopes(7, now).is_ok());
        feed.publish(Change::Everything);
        assert!(cache.scopes(7, now).is_err());
        let stale = cache.scopes(7, now).unwrap_err();
        feed.publish(Change::Everything);
        cache.insert_scopes(7, scopes, stale, now);
        assert!(
            cache.scopes(7, now).is_err(),
            "read before a change: not kept"
        );
    }
}
