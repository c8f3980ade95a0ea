//! Tokens and authorization codes: newest first, filters, search, a drill-down by date, and
//! revocation of one or many. Only a short fingerprint of a token's hash is ever shown.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::{context, Value};
use time::OffsetDateTime;

use super::{
    dates::{drill_down, Period},
    fields::text,
    listing::{posted_ids, when, Listing},
    try_or_fail, Staff,
};
use crate::{
    store::{
        admin::{
            ClientFilter, ClientSort, CodeFilter, CodeListing, CodeSort, PageRequest, SortKey,
            TokenFilter, TokenKind, TokenListing, TokenSort, TokenStatus,
        },
        StoreError,
    },
    web::WebState,
};

/// The name of a token status in URLs and pages.
fn status_name(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Expired => "expired",
        TokenStatus::Revoked => "revoked",
    }
}

fn status_named(name: &str) -> Option<TokenStatus> {
    [TokenStatus::Active, TokenStatus::Expired, TokenStatus::Revoked]
        .into_iter()
        .find(|s| status_name(*s) == name)
}

/// Tokens as the templates show them.
pub(crate) fn token_rows(tokens: &[TokenListing], now: OffsetDateTime) -> Vec<Value> {
    tokens
        .iter()
        .map(|t| {
            context! {
                id => t.id,
                fingerprint => t.fingerprint,
                user => t.username,
                client_id => t.client_id,
                client => t.client_title,
                token_type => if t.refreshable { "bearer + refresh" } else { "bearer" },
                scopes => t.scopes.to_string(),
                issued => when(t.issued_at),
                expires => when(t.expires_at),
                status => status_name(TokenStatus::of(t.revoked, t.expires_at, now)),
            }
        })
        .collect()
}

/// Codes as the templates show them.
pub(crate) fn code_rows(codes: &[CodeListing], now: OffsetDateTime) -> Vec<Value> {
    codes
        .iter()
        .map(|c| {
            let status = if c.consumed {
                "used"
            } else if c.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            context! {
                id => c.id,
                client_id => c.client_id,
                client => c.client_title,
                user => c.username,
                redirect_uri => c.redirect_uri,
                scopes => c.scopes.to_string(),
                issued => when(c.issued_at),
                status => status,
            }
        })
        .collect()
}

/// The choices of the "by client" filter: every client, by title.
async fn client_choices(state: &WebState) -> Result<Vec<(String, String)>, StoreError> {
    let clients = state
        .server
        .store()
        .client_page(
            &ClientFilter::default(),
            ClientSort::DEFAULT,
            PageRequest {
                offset: 0,
                limit: 200,
            },
        )
        .await?;
    Ok(clients
        .items
        .into_iter()
        .map(|c| (c.client.id.to_string(), c.client.title))
        .collect())
}

/// `GET /admin/tokens/`.
pub(crate) async fn list(
    State(state): State<WebState>,
    mut staff: Staff,
    query: RawQuery,
) -> Response {
    let listing: Listing<TokenSort> = Listing::parse(&state.path("/admin/"), "tokens/", query);
    let period = Period::of(&listing);
    let now = state.server.now();
    let mut filter = TokenFilter {
        search: listing.search.clone(),
        client_id: listing.get("client").and_then(|c| c.parse().ok()),
        kind: match listing.get("type") {
            Some("refresh") => Some(TokenKind::Refreshable),
            Some("access") => Some(TokenKind::AccessOnly),
            _ => None,
        },
        status: listing.get("status").and_then(status_named),
        issued: Default::default(),
        now,
    };
    let store = state.server.store();
    let bounds = try_or_fail!(staff, &state, store.token_issue_bounds(&filter).await);
    filter.issued = period.range();
    let days = if period.needs_days() {
        try_or_fail!(staff, &state, store.token_day_counts(&filter).await)
    } else {
        Vec::new()
    };
    let page = try_or_fail!(
        staff,
        &state,
        store
            .token_page(&filter, listing.order, listing.page_request())
            .await
    );
    let clients = try_or_fail!(staff, &state, client_choices(&state).await);
    let statuses = [TokenStatus::Active, TokenStatus::Expired, TokenStatus::Revoked]
        .map(|s| (status_name(s).to_owned(), status_name(s).to_owned()));
    let types = [
        ("refresh".to_owned(), "With a refresh token".to_owned()),
        ("access".to_owned(), "Access token only".to_owned()),
    ];
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/tokens",
        "Tokens",
        context! {
            section => "tokens",
            rows => token_rows(&page.items, now),
            columns => [
                listing.column(TokenSort::Issued, "Issued"),
                listing.column(TokenSort::Expires, "Expires"),
                listing.column(TokenSort::User, "User"),
                listing.column(TokenSort::Client, "Client"),
            ],
            filters => [
                listing.filter("status", "By status", &statuses),
                listing.filter("type", "By type", &types),
                listing.filter("client", "By client", &clients),
            ],
            dates => drill_down(&listing, period, bounds, &days),
            pagination => listing.pagination(page.total),
        },
    );
    staff.respond(&state, response).await
}

/// Where a revocation form sends the operator back to: a path under the admin root it
/// came from, or `default`.
fn back_to(state: &WebState, posted: &str, default: &str) -> String {
    let admin = state.path("/admin/");
    match posted.strip_prefix(&admin) {
        Some(rest) if !rest.starts_with('/') && !rest.contains("//") => rest.to_owned(),
        _ => default.to_owned(),
    }
}

/// `POST /admin/tokens/`: revokes the ticked tokens.
pub(crate) async fn revoke(
    State(state): State<WebState>,
    mut staff: Staff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let back = back_to(&state, text(&params, "back"), "tokens/");
    let ids = posted_ids(&params, "ids");
    if ids.is_empty() {
        staff.failure("Select one or more tokens first.");
    } else {
        let revoked = try_or_fail!(staff, &state, state.server.store().revoke_tokens(&ids).await);
        tracing::info!(count = revoked, by = %staff.user.username, "tokens revoked from the admin site");
        staff.success(format!("{revoked} token(s) revoked."));
    }
    staff.redirect(&state, &back).await
}

/// `GET /admin/codes/`.
pub(crate) async fn codes(
    State(state): State<WebState>,
    mut staff: Staff,
    query: RawQuery,
) -> Response {
    let listing: Listing<CodeSort> = Listing::parse(&state.path("/admin/"), "codes/", query);
    let period = Period::of(&listing);
    let now = state.server.now();
    let mut filter = CodeFilter {
        search: listing.search.clone(),
        client_id: listing.get("client").and_then(|c| c.parse().ok()),
        issued: Default::default(),
    };
    let store = state.server.store();
    let bounds = try_or_fail!(staff, &state, store.code_issue_bounds(&filter).await);
    filter.issued = period.range();
    let days = if period.needs_days() {
        try_or_fail!(staff, &state, store.code_day_counts(&filter).await)
    } else {
        Vec::new()
    };
    let page = try_or_fail!(
        staff,
        &state,
        store
            .code_page(&filter, listing.order, listing.page_request())
            .await
    );
    let clients = try_or_fail!(staff, &state, client_choices(&state).await);
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/codes",
        "Authorization codes",
        context! {
            section => "codes",
            rows => code_rows(&page.items, now),
            columns => [
                listing.column(CodeSort::Issued, "Issued"),
                listing.column(CodeSort::Client, "Client"),
                listing.column(CodeSort::User, "User"),
                listing.column(CodeSort::RedirectUri, "Redirect URI"),
            ],
            filters => [listing.filter("client", "By client", &clients)],
            dates => drill_down(&listing, period, bounds, &days),
            pagination => listing.pagination(page.total),
        },
    );
    staff.respond(&state, response).await
}

/// `POST /admin/codes/`: revokes the ticked codes and the tokens issued for them.
pub(crate) async fn revoke_codes(
    State(state): State<WebState>,
    mut staff: Staff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let back = back_to(&state, text(&params, "back"), "codes/");
    let ids = posted_ids(&params, "ids");
    if ids.is_empty() {
        staff.failure("Select one or more codes first.");
    } else {
        let revoked = try_or_fail!(staff, &state, state.server.store().revoke_codes(&ids).await);
        staff.success(format!("{revoked} code(s) revoked, with any tokens issued for them."));
    }
    staff.redirect(&state, &back).await
}
