//! What the admin site reads and writes: filtered, sorted, paginated listings, and the
//! changes an operator makes.
//!
//! Listings are paginated in the database (`LIMIT`/`OFFSET` with a `COUNT`), filtered on
//! indexed columns, and never load a whole table, so they stay fast with many tokens.

use async_trait::async_trait;
use oauthost_core::{
    client::{ClientType, GrantTypes},
    scope::{ScopeId, ScopeList},
    secret::SecretHash,
};
use time::OffsetDateTime;

use super::{ClientSummary, Scope, StoreResult, User};

/// Which page of a listing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return at most.
    pub limit: i64,
}

/// One page of a listing, and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows match the filter, on every page.
    pub total: i64,
}

/// A sort order: a column of the listing, ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<S> {
    /// The column.
    pub by: S,
    /// Whether the largest values come first.
    pub descending: bool,
}

/// The columns a listing can be sorted by, with the names the admin site's URLs use.
pub trait SortKey: Copy + PartialEq + Send + Sync + 'static {
    /// Every column and its name.
    const KEYS: &'static [(&'static str, Self)];
    /// The order a listing has before a column is chosen.
    const DEFAULT: Order<Self>;

    /// The column's name in URLs.
    fn name(self) -> &'static str {
        Self::KEYS
            .iter()
            .find(|(_, key)| *key == self)
            .map_or("", |(name, _)| name)
    }

    /// The column called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::KEYS
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, key)| *key)
    }
}

macro_rules! sort_keys {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $key:literal),+ $(,)? }
     default $default:ident $descending:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl SortKey for $name {
            const KEYS: &'static [(&'static str, Self)] = &[$(($key, Self::$variant)),+];
            const DEFAULT: Order<Self> = Order { by: Self::$default, descending: $descending };
        }
    };
}

sort_keys! {
    /// Columns of the scope listing.
    ScopeSort {
        /// The title.
        Title = "title",
        /// The identifier.
        Identifier = "identifier",
        /// Enabled or disabled.
        Status = "status",
    }
    default Title false
}

sort_keys! {
    /// Columns of the client listing.
    ClientSort {
        /// The title.
        Title = "title",
        /// The public identifier.
        Identifier = "identifier",
        /// Confidential or public.
        Type = "type",
        /// The registrant's username.
        Registrant = "registrant",
        /// The registration time.
        Created = "created",
    }
    default Title false
}

sort_keys! {
    /// Columns of the token listing.
    TokenSort {
        /// The issue time.
        Issued = "issued",
        /// The expiry time.
        Expires = "expires",
        /// The user's username.
        User = "user",
        /// The client's title.
        Client = "client",
    }
    default Issued true
}

sort_keys! {
    /// Columns of the authorization code listing.
    CodeSort {
        /// The issue time.
        Issued = "issued",
        /// The client's title.
        Client = "client",
        /// The user's username.
        User = "user",
        /// The redirect URI.
        RedirectUri = "redirect_uri",
    }
    default Issued true
}

sort_keys! {
    /// Columns of the user listing.
    UserSort {
        /// The username.
        Username = "username",
        /// Staff or not.
        Staff = "staff",
        /// Active or not.
        Active = "active",
        /// The creation time.
        Created = "created",
    }
    default Username false
}

/// A half-open time interval `[from, until)`; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    /// The first instant included.
    pub from: Option<OffsetDateTime>,
    /// The first instant excluded.
    pub until: Option<OffsetDateTime>,
}

/// Which scopes to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    /// Text the title or identifier contains (case-insensitive); empty matches all.
    pub search: String,
    /// Only enabled (`Some(true)`) or disabled (`Some(false)`) scopes.
    pub enabled: Option<bool>,
}

/// Which clients to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    /// Text the title or identifier contains (case-insensitive); empty matches all.
    pub search: String,
    /// Only clients of this type.
    pub client_type: Option<ClientType>,
}

/// Whether a token comes with a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token with a refresh token.
    Refreshable,
    /// An access token alone.
    AccessOnly,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Usable: neither revoked nor expired.
    Active,
    /// Past its expiry, not revoked.
    Expired,
    /// Revoked (or replaced by a refresh).
    Revoked,
}

impl TokenStatus {
    /// The status of a token revoked or not, expiring at `expires_at`, seen at `now`.
    pub fn of(revoked: bool, expires_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        if revoked {
            Self::Revoked
        } else if expires_at <= now {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// Which tokens to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFilter {
    /// Text the user's username or the client's title contains; empty matches all.
    pub search: String,
    /// Only tokens of the client with this database key.
    pub client_id: Option<i64>,
    /// Only tokens of this kind.
    pub kind: Option<TokenKind>,
    /// Only tokens with this status at `now`.
    pub status: Option<TokenStatus>,
    /// Only tokens issued in this interval.
    pub issued: DateRange,
    /// The time statuses are judged at.
    pub now: OffsetDateTime,
}

/// Which authorization codes to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeFilter {
    /// Text the redirect URI contains; empty matches all.
    pub search: String,
    /// Only codes of the client with this database key.
    pub client_id: Option<i64>,
    /// Only codes issued in this interval.
    pub issued: DateRange,
}

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Text the username contains; empty matches all.
    pub search: String,
    /// Only staff (`Some(true)`) or non-staff users.
    pub staff: Option<bool>,
    /// Only active (`Some(true)`) or inactive users.
    pub active: Option<bool>,
}

/// A token as the admin site lists it: never the token, only a fingerprint of its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenListing {
    /// Database key.
    pub id: i64,
    /// The first hex digits of the access token's SHA-256 hash.
    pub fingerprint: String,
    /// The user's username, for a token issued on a user's behalf.
    pub username: Option<String>,
    /// Database key of the client.
    pub client_id: i64,
    /// Title of the client.
    pub client_title: String,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry of the access token.
    pub expires_at: OffsetDateTime,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Whether it has a refresh token.
    pub refreshable: bool,
}

/// An authorization code as the admin site lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeListing {
    /// Database key.
    pub id: i64,
    /// Database key of the client.
    pub client_id: i64,
    /// Title of the client.
    pub client_title: String,
    /// Username of the user who approved it.
    pub username: String,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scopes: ScopeList,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Expiry time.
    pub expires_at: OffsetDateTime,
    /// Whether it was exchanged (or revoked).
    pub consumed: bool,
}

/// How many rows were issued on one day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// Midnight UTC of the day.
    pub day: OffsetDateTime,
    /// Rows issued that day.
    pub count: i64,
}

/// A registered redirect endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectEndpoint {
    /// Database key.
    pub id: i64,
    /// The URI.
    pub uri: String,
}

/// The new settings of a client, as the admin site edits them: everything but its secret,
/// registrant and redirect endpoints, which change through actions of their own.
#[derive(Debug, Clone)]
pub struct ClientChanges {
    /// The public `client_id`.
    pub identifier: String,
    /// Unique title.
    pub title: String,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Free text.
    pub description: String,
    /// Home page.
    pub link: Option<String>,
    /// Access token lifetime in seconds (positive).
    pub token_lifetime: i64,
    /// Whether it accepts `#` in a `Location` header.
    pub hash_sign_supported: bool,
    /// The grants it may use.
    pub grant_types: GrantTypes,
    /// The database keys of the scopes it is restricted to; empty means unrestricted.
    pub scope_ids: Vec<i64>,
}

/// The admin site's queries and changes. Each change is one transaction.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// A page of scopes.
    async fn scope_page(
        &self,
        filter: &ScopeFilter,
        order: Order<ScopeSort>,
        page: PageRequest,
    ) -> StoreResult<Page<Scope>>;
    /// The scope with database key `id`.
    async fn scope_by_key(&self, id: i64) -> StoreResult<Option<Scope>>;
    /// Changes the scope `id`; `false` when there is none. A taken identifier is
    /// [`StoreError::Duplicate`](super::StoreError::Duplicate).
    async fn update_scope(
        &self,
        id: i64,
        identifier: &ScopeId,
        title: &str,
        enabled: bool,
    ) -> StoreResult<bool>;
    /// Enables or disables the scopes `ids`; returns how many exist.
    async fn set_scopes_enabled(&self, ids: &[i64], enabled: bool) -> StoreResult<u64>;
    /// The titles of the clients restricted to scopes among `ids` only: deleting those
    /// scopes would leave them unrestricted, that is allowed every scope.
    async fn clients_restricted_to(&self, ids: &[i64]) -> StoreResult<Vec<String>>;
    /// Deletes the scopes `ids` (and their place in client restrictions); returns how many
    /// were deleted. When a client is restricted to these scopes only, nothing is deleted
    /// and the error, [`StoreError::Refused`](super::StoreError::Refused), names it: an
    /// empty restriction would allow it every scope.
    async fn delete_scopes(&self, ids: &[i64]) -> StoreResult<u64>;

    /// A page of clients with their registrants.
    async fn client_page(
        &self,
        filter: &ClientFilter,
        order: Order<ClientSort>,
        page: PageRequest,
    ) -> StoreResult<Page<ClientSummary>>;
    /// Changes the client `id` and replaces its scope restriction, in one transaction;
    /// `false` when there is none. A taken title or identifier is
    /// [`StoreError::Duplicate`](super::StoreError::Duplicate), an unknown scope key
    /// [`StoreError::NotFound`](super::StoreError::NotFound); then nothing changes.
    async fn update_client(&self, id: i64, changes: &ClientChanges) -> StoreResult<bool>;
    /// Replaces the secret of the client `id` (`None` removes it); `false` when there is
    /// none.
    async fn set_client_secret(&self, id: i64, secret: Option<&SecretHash>) -> StoreResult<bool>;
    /// Deletes the client `id` with its endpoints, codes and tokens; `false` when there is
    /// none.
    async fn delete_client(&self, id: i64) -> StoreResult<bool>;
    /// The redirect endpoints of the client `client_id`, in registration order.
    async fn redirect_endpoints(&self, client_id: i64) -> StoreResult<Vec<RedirectEndpoint>>;
    /// Adds a redirect endpoint; one the client has already is
    /// [`StoreError::Duplicate`](super::StoreError::Duplicate).
    async fn add_redirect_endpoint(
        &self,
        client_id: i64,
        uri: &str,
    ) -> StoreResult<RedirectEndpoint>;
    /// Removes the endpoint `endpoint_id` of the client `client_id`; `false` when there is
    /// none.
    async fn remove_redirect_endpoint(&self, client_id: i64, endpoint_id: i64)
        -> StoreResult<bool>;

    /// A page of tokens.
    async fn token_page(
        &self,
        filter: &TokenFilter,
        order: Order<TokenSort>,
        page: PageRequest,
    ) -> StoreResult<Page<TokenListing>>;
    /// The first and last issue times of the tokens the filter matches.
    async fn token_issue_bounds(
        &self,
        filter: &TokenFilter,
    ) -> StoreResult<Option<(OffsetDateTime, OffsetDateTime)>>;
    /// How many tokens the filter matches per day of issue, in order.
    async fn token_day_counts(&self, filter: &TokenFilter) -> StoreResult<Vec<DayCount>>;
    /// Revokes the tokens `ids`; returns how many were still active.
    async fn revoke_tokens(&self, ids: &[i64]) -> StoreResult<u64>;

    /// A page of authorization codes.
    async fn code_page(
        &self,
        filter: &CodeFilter,
        order: Order<CodeSort>,
        page: PageRequest,
    ) -> StoreResult<Page<CodeListing>>;
    /// The first and last issue times of the codes the filter matches.
    async fn code_issue_bounds(
        &self,
        filter: &CodeFilter,
    ) -> StoreResult<Option<(OffsetDateTime, OffsetDateTime)>>;
    /// How many codes the filter matches per day of issue, in order.
    async fn code_day_counts(&self, filter: &CodeFilter) -> StoreResult<Vec<DayCount>>;
    /// Revokes the codes `ids`: each is marked used, so it can no longer be exchanged, and
    /// the tokens issued for it are revoked. Returns how many codes were still unused.
    async fn revoke_codes(&self, ids: &[i64]) -> StoreResult<u64>;

    /// A page of users.
    async fn user_page(
        &self,
        filter: &UserFilter,
        order: Order<UserSort>,
        page: PageRequest,
    ) -> StoreResult<Page<User>>;
    /// Sets whether the user `id` is active and staff, and replaces its password hash when
    /// one is given, in one statement; `false` when there is no such user.
    async fn update_user(
        &self,
        id: i64,
        is_active: bool,
        is_staff: bool,
        password_hash: Option<&str>,
    ) -> StoreResult<bool>;
}

/// The fingerprint the admin site shows for a token: the first 8 hex digits of its hash.
pub fn fingerprint(hash: &[u8]) -> String {
    hash.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_round_trip_through_their_names() {
        for (name, key) in TokenSort::KEYS {
            assert_eq!(TokenSort::from_name(name), Some(*key));
            assert_eq!(key.name(), *name);
        }
        assert_eq!(ScopeSort::from_name("nope"), None);
    }

    #[test]
    fn status_prefers_revoked_then_expiry() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        let later = now + time::Duration::hours(1);
        assert_eq!(TokenStatus::of(true, later, now), TokenStatus::Revoked);
        assert_eq!(TokenStatus::of(false, later, now), TokenStatus::Active);
        assert_eq!(TokenStatus::of(false, now, now), TokenStatus::Expired);
    }

    #[test]
    fn fingerprints_show_four_bytes() {
        assert_eq!(fingerprint(&[0xab, 0x01, 0xff, 0x10, 0x99]), "ab01ff10");
    }
}
