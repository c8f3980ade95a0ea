//! The admin site's SQL, shared by both backends like [`impl_store!`](super::sql).
//!
//! Listings are built with [`sqlx::QueryBuilder`], which writes each backend's placeholders;
//! every value is bound, and sort columns come from a fixed list, never from the request.

use oauthost_core::scope::ScopeList;
use time::OffsetDateTime;

use super::{
    admin::{fingerprint, CodeListing, DayCount, RedirectEndpoint, TokenListing},
    rows::{corrupt, timestamp},
    StoreError, StoreResult,
};

/// Seconds in a day, for grouping issue times by day.
pub(super) const DAY: i64 = 86_400;

/// `search` as a `LIKE` pattern matching it anywhere, with `%`, `_` and `\` escaped (use
/// with `ESCAPE '\'`). Case is folded by the database, on both sides, so that both backends
/// agree on what matches: SQLite's `LOWER` folds ASCII letters only.
pub(super) fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn scopes(table: &'static str, text: &str) -> StoreResult<ScopeList> {
    text.parse().map_err(|e| corrupt(table, e))
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenListingRow {
    id: i64,
    access_token_hash: Vec<u8>,
    username: Option<String>,
    client_id: i64,
    client_title: String,
    scopes: String,
    issued_at: i64,
    expires_at: i64,
    revoked: bool,
    refreshable: bool,
}

impl TryFrom<TokenListingRow> for TokenListing {
    type Error = StoreError;

    fn try_from(row: TokenListingRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_tokens";
        Ok(Self {
            id: row.id,
            fingerprint: fingerprint(&row.access_token_hash),
            username: row.username,
            client_id: row.client_id,
            client_title: row.client_title,
            scopes: scopes(TABLE, &row.scopes)?,
            issued_at: timestamp(TABLE, row.issued_at)?,
            expires_at: timestamp(TABLE, row.expires_at)?,
            revoked: row.revoked,
            refreshable: row.refreshable,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CodeListingRow {
    id: i64,
    client_id: i64,
    client_title: String,
    username: String,
    redirect_uri: String,
    scopes: String,
    issued_at: i64,
    expires_at: i64,
    consumed: bool,
}

impl TryFrom<CodeListingRow> for CodeListing {
    type Error = StoreError;

    fn try_from(row: CodeListingRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_authorization_codes";
        Ok(Self {
            id: row.id,
            client_id: row.client_id,
            client_title: row.client_title,
            username: row.username,
            redirect_uri: row.redirect_uri,
            scopes: scopes(TABLE, &row.scopes)?,
            issued_at: timestamp(TABLE, row.issued_at)?,
            expires_at: timestamp(TABLE, row.expires_at)?,
            consumed: row.consumed,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DayCountRow {
    day: i64,
    count: i64,
}

impl TryFrom<DayCountRow> for DayCount {
    type Error = StoreError;

    fn try_from(row: DayCountRow) -> StoreResult<Self> {
        Ok(Self {
            day: timestamp("day counts", row.day)?,
            count: row.count,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RedirectEndpointRow {
    id: i64,
    uri: String,
}

impl From<RedirectEndpointRow> for RedirectEndpoint {
    fn from(row: RedirectEndpointRow) -> Self {
        Self {
            id: row.id,
            uri: row.uri,
        }
    }
}

/// The first and last issue times as read by `MIN`/`MAX`.
pub(super) fn bounds(
    row: (Option<i64>, Option<i64>),
    table: &'static str,
) -> StoreResult<Option<(OffsetDateTime, OffsetDateTime)>> {
    match row {
        (Some(first), Some(last)) => Ok(Some((timestamp(table, first)?, timestamp(table, last)?))),
        _ => Ok(None),
    }
}

/// Implements [`AdminStore`](super::AdminStore) for `$store`, whose `pool` field is a pool
/// of `$db`.
macro_rules! impl_admin_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use oauthost_core::{scope::ScopeId, secret::SecretHash};
            use sqlx::QueryBuilder;
            use time::OffsetDateTime;

            use $crate::store::{
                admin::{
                    AdminStore, ClientChanges, ClientFilter, ClientSort, CodeFilter, CodeListing,
                    CodeSort, DateRange, DayCount, Order, Page, PageRequest, RedirectEndpoint,
                    ScopeFilter, ScopeSort, TokenFilter, TokenKind, TokenListing, TokenSort,
                    TokenStatus, UserFilter, UserSort,
                },
                admin_sql::{
                    bounds, contains_pattern, CodeListingRow, DayCountRow, RedirectEndpointRow,
                    TokenListingRow, DAY,
                },
                rows::{duplicate_or, scope_columns, user_columns, ClientSummaryRow, ScopeRow, UserRow},
                ClientSummary, Scope, StoreError, StoreResult, User,
            };

            type Query<'a> = QueryBuilder<'a, $db>;

            /// Appends ` AND (a LIKE p OR b LIKE p ...)` for a non-empty search.
            fn push_search(query: &mut Query<'_>, search: &str, columns: &[&str]) {
                if search.is_empty() {
                    return;
                }
                let pattern = contains_pattern(search);
                query.push(" AND (");
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        query.push(" OR ");
                    }
                    query.push(format_args!("LOWER({column}) LIKE LOWER("));
                    query.push_bind(pattern.clone());
                    query.push(") ESCAPE '\\'");
                }
                query.push(")");
            }

            fn push_dates(query: &mut Query<'_>, column: &str, range: &DateRange) {
                if let Some(from) = range.from {
                    query.push(format_args!(" AND {column} >= "));
                    query.push_bind(from.unix_timestamp());
                }
                if let Some(until) = range.until {
                    query.push(format_args!(" AND {column} < "));
                    query.push_bind(until.unix_timestamp());
                }
            }

            fn push_order(query: &mut Query<'_>, column: &str, tie: &str, descending: bool) {
                let direction = if descending { "DESC" } else { "ASC" };
                query.push(format_args!(" ORDER BY {column} {direction}, {tie} {direction}"));
            }

            fn push_page(query: &mut Query<'_>, page: PageRequest) {
                query.push(" LIMIT ");
                query.push_bind(page.limit);
                query.push(" OFFSET ");
                query.push_bind(page.offset);
            }

            /// Appends ` AND column IN (ids...)` (or ` OR ...`, as `connector` says).
            fn push_in(query: &mut Query<'_>, connector: &str, column: &str, ids: &[i64]) {
                query.push(format_args!(" {connector} {column} IN ("));
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                query.push(")");
            }

            /// The titles of the clients whose restriction lists scopes among `ids` only.
            async fn restricted_to(
                conn: &mut <$db as sqlx::Database>::Connection,
                ids: &[i64],
            ) -> StoreResult<Vec<String>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = Query::new(
                    "SELECT c.title FROM oauthost_clients c WHERE EXISTS \
                     (SELECT 1 FROM oauthost_client_scopes cs WHERE cs.client_id = c.id) \
                     AND NOT EXISTS (SELECT 1 FROM oauthost_client_scopes cs \
                     WHERE cs.client_id = c.id",
                );
                push_in(&mut query, "AND NOT", "cs.scope_id", ids);
                query.push(") ORDER BY c.title");
                let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut *conn).await?;
                Ok(rows.into_iter().map(|(title,)| title).collect())
            }

            fn scope_where(query: &mut Query<'_>, filter: &ScopeFilter) {
                query.push(" WHERE 1 = 1");
                push_search(query, &filter.search, &["title", "identifier"]);
                if let Some(enabled) = filter.enabled {
                    query.push(" AND enabled = ");
                    query.push_bind(enabled);
                }
            }

            const CLIENT_FROM: &str =
                " FROM oauthost_clients c JOIN oauthost_users u ON u.id = c.registrant_id";

            fn client_where(query: &mut Query<'_>, filter: &ClientFilter) {
                query.push(" WHERE 1 = 1");
                push_search(query, &filter.search, &["c.title", "c.identifier"]);
                if let Some(client_type) = filter.client_type {
                    query.push(" AND c.client_type = ");
                    query.push_bind(client_type.as_str());
                }
            }

            const TOKEN_FROM: &str = " FROM oauthost_tokens t \
                JOIN oauthost_clients c ON c.id = t.client_id \
                LEFT JOIN oauthost_users u ON u.id = t.user_id";

            fn token_where(query: &mut Query<'_>, filter: &TokenFilter) {
                query.push(" WHERE 1 = 1");
                push_search(
                    query,
                    &filter.search,
                    &["COALESCE(u.username, '')", "c.title", "c.identifier"],
                );
                if let Some(client_id) = filter.client_id {
                    query.push(" AND t.client_id = ");
                    query.push_bind(client_id);
                }
                match filter.kind {
                    Some(TokenKind::Refreshable) => {
                        query.push(" AND t.refresh_token_hash IS NOT NULL");
                    }
                    Some(TokenKind::AccessOnly) => {
                        query.push(" AND t.refresh_token_hash IS NULL");
                    }
                    None => {}
                }
                let now = filter.now.unix_timestamp();
                match filter.status {
                    Some(TokenStatus::Active) => {
                        query.push(" AND t.revoked = FALSE AND t.expires_at > ");
                        query.push_bind(now);
                    }
                    Some(TokenStatus::Expired) => {
                        query.push(" AND t.revoked = FALSE AND t.expires_at <= ");
                        query.push_bind(now);
                    }
                    Some(TokenStatus::Revoked) => {
                        query.push(" AND t.revoked = TRUE");
                    }
                    None => {}
                }
                push_dates(query, "t.issued_at", &filter.issued);
            }

            const CODE_FROM: &str = " FROM oauthost_authorization_codes a \
                JOIN oauthost_clients c ON c.id = a.client_id \
                JOIN oauthost_users u ON u.id = a.user_id";

            fn code_where(query: &mut Query<'_>, filter: &CodeFilter) {
                query.push(" WHERE 1 = 1");
                push_search(query, &filter.search, &["a.redirect_uri"]);
                if let Some(client_id) = filter.client_id {
                    query.push(" AND a.client_id = ");
                    query.push_bind(client_id);
                }
                push_dates(query, "a.issued_at", &filter.issued);
            }

            fn user_where(query: &mut Query<'_>, filter: &UserFilter) {
                query.push(" WHERE 1 = 1");
                push_search(query, &filter.search, &["username"]);
                if let Some(staff) = filter.staff {
                    query.push(" AND is_staff = ");
                    query.push_bind(staff);
                }
                if let Some(active) = filter.active {
                    query.push(" AND is_active = ");
                    query.push_bind(active);
                }
            }

            impl $store {
                /// Runs `SELECT COUNT(*)` built by `build`.
                async fn count_with(&self, build: impl FnOnce(&mut Query<'_>)) -> StoreResult<i64> {
                    let mut query = Query::new("SELECT COUNT(*)");
                    build(&mut query);
                    let (count,): (i64,) = query.build_query_as().fetch_one(&self.pool).await?;
                    Ok(count)
                }
            }

            #[async_trait]
            impl AdminStore for $store {
                async fn scope_page(
                    &self,
                    filter: &ScopeFilter,
                    order: Order<ScopeSort>,
                    page: PageRequest,
                ) -> StoreResult<Page<Scope>> {
                    let total = self
                        .count_with(|query| {
                            query.push(" FROM oauthost_scopes");
                            scope_where(query, filter);
                        })
                        .await?;
                    let mut query = Query::new(concat!("SELECT ", scope_columns!(), " FROM oauthost_scopes"));
                    scope_where(&mut query, filter);
                    let column = match order.by {
                        ScopeSort::Title => "title",
                        ScopeSort::Identifier => "identifier",
                        ScopeSort::Status => "enabled",
                    };
                    push_order(&mut query, column, "identifier", order.descending);
                    push_page(&mut query, page);
                    let rows: Vec<ScopeRow> = query.build_query_as().fetch_all(&self.pool).await?;
                    let items = rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
                    Ok(Page { items, total })
                }

                async fn scope_by_key(&self, id: i64) -> StoreResult<Option<Scope>> {
                    let row: Option<ScopeRow> = sqlx::query_as(concat!(
                        "SELECT ", scope_columns!(), " FROM oauthost_scopes WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                }

                async fn update_scope(
                    &self,
                    id: i64,
                    identifier: &ScopeId,
                    title: &str,
                    enabled: bool,
                ) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE oauthost_scopes SET identifier = $2, title = $3, enabled = $4 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(identifier.as_str())
                    .bind(title)
                    .bind(enabled)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| duplicate_or(e, "scope", identifier.as_str()))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_scopes_enabled(&self, ids: &[i64], enabled: bool) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    let mut query = Query::new("UPDATE oauthost_scopes SET enabled = ");
                    query.push_bind(enabled);
                    query.push(" WHERE 1 = 1");
                    push_in(&mut query, "AND", "id", ids);
                    Ok(query.build().execute(&self.pool).await?.rows_affected())
                }

                async fn clients_restricted_to(&self, ids: &[i64]) -> StoreResult<Vec<String>> {
                    let mut conn = self.pool.acquire().await?;
                    restricted_to(&mut conn, ids).await
                }

                async fn delete_scopes(&self, ids: &[i64]) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    let mut tx = self.pool.begin().await?;
                    let clients = restricted_to(&mut tx, ids).await?;
                    if !clients.is_empty() {
                        return Err(StoreError::Refused(format!(
                            "deleting would leave {} without any scope, which would allow every \
                             scope: change {} restriction first",
                            clients.join(", "),
                            if clients.len() == 1 { "its" } else { "their" },
                        )));
                    }
                    let mut query = Query::new("DELETE FROM oauthost_scopes WHERE 1 = 1");
                    push_in(&mut query, "AND", "id", ids);
                    let deleted = query.build().execute(&mut *tx).await?.rows_affected();
                    tx.commit().await?;
                    Ok(deleted)
                }

                async fn client_page(
                    &self,
                    filter: &ClientFilter,
                    order: Order<ClientSort>,
                    page: PageRequest,
                ) -> StoreResult<Page<ClientSummary>> {
                    let total = self
                        .count_with(|query| {
                            query.push(CLIENT_FROM);
                            client_where(query, filter);
                        })
                        .await?;
                    let mut query = Query::new(
                        "SELECT c.id, c.identifier, c.title, c.secret_hash, c.client_type, \
                         c.registrant_id, c.description, c.link, c.token_lifetime, \
                         c.hash_sign_supported, c.grant_types, c.created_at, \
                         u.username AS registrant",
                    );
                    query.push(CLIENT_FROM);
                    client_where(&mut query, filter);
                    let column = match order.by {
                        ClientSort::Title => "c.title",
                        ClientSort::Identifier => "c.identifier",
                        ClientSort::Type => "c.client_type",
                        ClientSort::Registrant => "u.username",
                        ClientSort::Created => "c.created_at",
                    };
                    push_order(&mut query, column, "c.id", order.descending);
                    push_page(&mut query, page);
                    let rows: Vec<ClientSummaryRow> =
                        query.build_query_as().fetch_all(&self.pool).await?;
                    let items = rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
                    Ok(Page { items, total })
                }

                async fn update_client(&self, id: i64, changes: &ClientChanges) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let mut tx = self.pool.begin().await?;
                    let taken: Option<(String,)> = sqlx::query_as(
                        "SELECT title FROM oauthost_clients \
                         WHERE (title = $1 OR identifier = $2) AND id <> $3 LIMIT 1",
                    )
                    .bind(&changes.title)
                    .bind(&changes.identifier)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((title,)) = taken {
                        return Err(if title == changes.title {
                            StoreError::Duplicate { what: "client title", value: title }
                        } else {
                            StoreError::Duplicate {
                                what: "client identifier",
                                value: changes.identifier.clone(),
                            }
                        });
                    }
                    let done = sqlx::query(
                        "UPDATE oauthost_clients SET identifier = $2, title = $3, \
                         client_type = $4, description = $5, link = $6, token_lifetime = $7, \
                         hash_sign_supported = $8, grant_types = $9 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&changes.identifier)
                    .bind(&changes.title)
                    .bind(changes.client_type.as_str())
                    .bind(&changes.description)
                    .bind(&changes.link)
                    .bind(changes.token_lifetime)
                    .bind(changes.hash_sign_supported)
                    .bind(changes.grant_types.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| duplicate_or(e, "client", &changes.title))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM oauthost_client_scopes WHERE client_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let mut scope_ids = changes.scope_ids.clone();
                    scope_ids.sort_unstable();
                    scope_ids.dedup();
                    for scope_id in scope_ids {
                        let inserted = sqlx::query(
                            "INSERT INTO oauthost_client_scopes (client_id, scope_id) \
                             SELECT $1, id FROM oauthost_scopes WHERE id = $2",
                        )
                        .bind(id)
                        .bind(scope_id)
                        .execute(&mut *tx)
                        .await?;
                        if inserted.rows_affected() == 0 {
                            return Err(StoreError::NotFound {
                                what: "scope",
                                value: scope_id.to_string(),
                            });
                        }
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn set_client_secret(
                    &self,
                    id: i64,
                    secret: Option<&SecretHash>,
                ) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("UPDATE oauthost_clients SET secret_hash = $2 WHERE id = $1")
                        .bind(id)
                        .bind(secret.map(|h| h.as_bytes()))
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_client(&self, id: i64) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM oauthost_clients WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn redirect_endpoints(&self, client_id: i64) -> StoreResult<Vec<RedirectEndpoint>> {
                    let rows: Vec<RedirectEndpointRow> = sqlx::query_as(
                        "SELECT id, uri FROM oauthost_redirect_endpoints \
                         WHERE client_id = $1 ORDER BY id",
                    )
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                async fn add_redirect_endpoint(
                    &self,
                    client_id: i64,
                    uri: &str,
                ) -> StoreResult<RedirectEndpoint> {
                    let _writing = self.writing().await;
                    let row: RedirectEndpointRow = sqlx::query_as(
                        "INSERT INTO oauthost_redirect_endpoints (client_id, uri) \
                         VALUES ($1, $2) RETURNING id, uri",
                    )
                    .bind(client_id)
                    .bind(uri)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| match duplicate_or(e, "redirect URI", uri) {
                        StoreError::Database(sqlx::Error::Database(db))
                            if db.is_foreign_key_violation() =>
                        {
                            StoreError::NotFound { what: "client", value: client_id.to_string() }
                        }
                        other => other,
                    })?;
                    Ok(row.into())
                }

                async fn remove_redirect_endpoint(
                    &self,
                    client_id: i64,
                    endpoint_id: i64,
                ) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "DELETE FROM oauthost_redirect_endpoints WHERE id = $1 AND client_id = $2",
                    )
                    .bind(endpoint_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn token_page(
                    &self,
                    filter: &TokenFilter,
                    order: Order<TokenSort>,
                    page: PageRequest,
                ) -> StoreResult<Page<TokenListing>> {
                    let total = self
                        .count_with(|query| {
                            query.push(TOKEN_FROM);
                            token_where(query, filter);
                        })
                        .await?;
                    let mut query = Query::new(
                        "SELECT t.id, t.access_token_hash, u.username, t.client_id, \
                         c.title AS client_title, t.scopes, t.issued_at, t.expires_at, t.revoked, \
                         (t.refresh_token_hash IS NOT NULL) AS refreshable",
                    );
                    query.push(TOKEN_FROM);
                    token_where(&mut query, filter);
                    let column = match order.by {
                        TokenSort::Issued => "t.issued_at",
                        TokenSort::Expires => "t.expires_at",
                        TokenSort::User => "COALESCE(u.username, '')",
                        TokenSort::Client => "c.title",
                    };
                    push_order(&mut query, column, "t.id", order.descending);
                    push_page(&mut query, page);
                    let rows: Vec<TokenListingRow> =
                        query.build_query_as().fetch_all(&self.pool).await?;
                    let items = rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
                    Ok(Page { items, total })
                }

                async fn token_issue_bounds(
                    &self,
                    filter: &TokenFilter,
                ) -> StoreResult<Option<(OffsetDateTime, OffsetDateTime)>> {
                    let mut query = Query::new("SELECT MIN(t.issued_at), MAX(t.issued_at)");
                    query.push(TOKEN_FROM);
                    token_where(&mut query, filter);
                    bounds(query.build_query_as().fetch_one(&self.pool).await?, "oauthost_tokens")
                }

                async fn token_day_counts(&self, filter: &TokenFilter) -> StoreResult<Vec<DayCount>> {
                    let mut query = Query::new("SELECT t.issued_at - (t.issued_at % ");
                    query.push(DAY);
                    query.push(") AS day, COUNT(*) AS count");
                    query.push(TOKEN_FROM);
                    token_where(&mut query, filter);
                    query.push(" GROUP BY 1 ORDER BY 1");
                    let rows: Vec<DayCountRow> = query.build_query_as().fetch_all(&self.pool).await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }

                async fn revoke_tokens(&self, ids: &[i64]) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    let mut query =
                        Query::new("UPDATE oauthost_tokens SET revoked = TRUE WHERE revoked = FALSE");
                    push_in(&mut query, "AND", "id", ids);
                    Ok(query.build().execute(&self.pool).await?.rows_affected())
                }

                async fn code_page(
                    &self,
                    filter: &CodeFilter,
                    order: Order<CodeSort>,
                    page: PageRequest,
                ) -> StoreResult<Page<CodeListing>> {
                    let total = self
                        .count_with(|query| {
                            query.push(CODE_FROM);
                            code_where(query, filter);
                        })
                        .await?;
                    let mut query = Query::new(
                        "SELECT a.id, a.client_id, c.title AS client_title, u.username, \
                         a.redirect_uri, a.scopes, a.issued_at, a.expires_at, a.consumed",
                    );
                    query.push(CODE_FROM);
                    code_where(&mut query, filter);
                    let column = match order.by {
                        CodeSort::Issued => "a.issued_at",
                        CodeSort::Client => "c.title",
                        CodeSort::User => "u.username",
                        CodeSort::RedirectUri => "a.redirect_uri",
                    };
                    push_order(&mut query, column, "a.id", order.descending);
                    push_page(&mut query, page);
                    let rows: Vec<CodeListingRow> =
                        query.build_query_as().fetch_all(&self.pool).await?;
                    let items = rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
                    Ok(Page { items, total })
                }

                async fn code_issue_bounds(
                    &self,
                    filter: &CodeFilter,
                ) -> StoreResult<Option<(OffsetDateTime, OffsetDateTime)>> {
                    let mut query = Query::new("SELECT MIN(a.issued_at), MAX(a.issued_at)");
                    query.push(CODE_FROM);
                    code_where(&mut query, filter);
                    bounds(
                        query.build_query_as().fetch_one(&self.pool).await?,
                        "oauthost_authorization_codes",
                    )
                }

                async fn code_day_counts(&self, filter: &CodeFilter) -> StoreResult<Vec<DayCount>> {
                    let mut query = Query::new("SELECT a.issued_at - (a.issued_at % ");
                    query.push(DAY);
                    query.push(") AS day, COUNT(*) AS count");
                    query.push(CODE_FROM);
                    code_where(&mut query, filter);
                    query.push(" GROUP BY 1 ORDER BY 1");
                    let rows: Vec<DayCountRow> = query.build_query_as().fetch_all(&self.pool).await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                }

                async fn revoke_codes(&self, ids: &[i64]) -> StoreResult<u64> {
                    let _writing = self.writing().await;
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    let mut tx = self.pool.begin().await?;
                    let mut query = Query::new(
                        "UPDATE oauthost_authorization_codes SET consumed = TRUE WHERE consumed = FALSE",
                    );
                    push_in(&mut query, "AND", "id", ids);
                    let codes = query.build().execute(&mut *tx).await?.rows_affected();
                    // The codes' tokens, and those refreshing them gave (same family).
                    let mut query = Query::new(
                        "UPDATE oauthost_tokens SET revoked = TRUE WHERE revoked = FALSE \
                         AND (1 = 0",
                    );
                    push_in(&mut query, "OR", "code_id", ids);
                    query.push(
                        " OR refresh_family IN (SELECT refresh_family FROM oauthost_tokens \
                         WHERE refresh_family IS NOT NULL",
                    );
                    push_in(&mut query, "AND", "code_id", ids);
                    query.push("))");
                    query.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(codes)
                }

                async fn user_page(
                    &self,
                    filter: &UserFilter,
                    order: Order<UserSort>,
                    page: PageRequest,
                ) -> StoreResult<Page<User>> {
                    let total = self
                        .count_with(|query| {
                            query.push(" FROM oauthost_users");
                            user_where(query, filter);
                        })
                        .await?;
                    let mut query = Query::new(concat!("SELECT ", user_columns!(), " FROM oauthost_users"));
                    user_where(&mut query, filter);
                    let column = match order.by {
                        UserSort::Username => "username",
                        UserSort::Staff => "is_staff",
                        UserSort::Active => "is_active",
                        UserSort::Created => "created_at",
                    };
                    push_order(&mut query, column, "id", order.descending);
                    push_page(&mut query, page);
                    let rows: Vec<UserRow> = query.build_query_as().fetch_all(&self.pool).await?;
                    let items = rows.into_iter().map(TryInto::try_into).collect::<StoreResult<_>>()?;
                    Ok(Page { items, total })
                }

                async fn update_user(
                    &self,
                    id: i64,
                    is_active: bool,
                    is_staff: bool,
                    password_hash: Option<&str>,
                ) -> StoreResult<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE oauthost_users SET is_active = $2, is_staff = $3, \
                         password_hash = COALESCE($4, password_hash) WHERE id = $1",
                    )
                    .bind(id)
                    .bind(is_active)
                    .bind(is_staff)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        };
    };
}

pub(super) use impl_admin_store;

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Poll"), "%Poll%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
