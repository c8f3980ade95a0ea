//! Rows as the database returns them, and their conversion into records.
//!
//! Times are stored as Unix seconds (`BIGINT`) on both databases: comparisons are integer
//! comparisons, and the two schemas stay alike. Hashes are 32-byte `BLOB`/`BYTEA` values;
//! scope and grant lists are space-delimited text.

use oauthost_core::secret::SecretHash;
use time::OffsetDateTime;

use super::{
    model::{
        AuthorizationCode, Client, ClientSummary, Scope, SessionRecord, Token, TokenDetails, User,
    },
    StoreError, StoreResult,
};

pub(super) fn corrupt(table: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}

pub(super) fn timestamp(table: &'static str, seconds: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| corrupt(table, e))
}

fn hash(table: &'static str, bytes: &[u8]) -> StoreResult<SecretHash> {
    SecretHash::from_bytes(bytes)
        .ok_or_else(|| corrupt(table, "hash is neither 32 nor 38 bytes long"))
}

/// Columns of [`UserRow`], for `SELECT` and `RETURNING`.
macro_rules! user_columns {
    () => {
        "id, username, is_staff, is_active, created_at"
    };
}
/// Columns of [`ScopeRow`].
macro_rules! scope_columns {
    () => {
        "id, identifier, title, enabled"
    };
}
/// Columns of [`ClientRow`].
macro_rules! client_columns {
    () => {
        "id, identifier, title, secret_hash, client_type, registrant_id, description, link, \
         token_lifetime, hash_sign_supported, grant_types, created_at"
    };
}
/// Columns of [`CodeRow`].
macro_rules! code_columns {
    () => {
        "id, code_hash, client_id, user_id, redirect_uri, redirect_uri_explicit, scopes, \
         code_challenge, code_challenge_method, issued_at, expires_at, consumed"
    };
}
/// Columns of [`TokenRow`].
macro_rules! token_columns {
    () => {
        "id, access_token_hash, refresh_token_hash, user_id, client_id, code_id, scopes, \
         issued_at, expires_at, revoked, refresh_family, refresh_rotated"
    };
}
/// Columns of `oauthost_tokens` a new token sets, in the order every insert binds them.
macro_rules! new_token_columns {
    () => {
        "access_token_hash, refresh_token_hash, token_type, user_id, client_id, code_id, \
         scopes, issued_at, expires_at, refresh_family"
    };
}
pub(super) use {
    client_columns, code_columns, new_token_columns, scope_columns, token_columns, user_columns,
};

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    is_staff: bool,
    is_active: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.id,
            username: row.username,
            is_staff: row.is_staff,
            is_active: row.is_active,
            created_at: timestamp("oauthost_users", row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UserCredentialsRow {
    #[sqlx(flatten)]
    pub(super) user: UserRow,
    pub(super) password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ScopeRow {
    id: i64,
    identifier: String,
    title: String,
    enabled: bool,
}

impl TryFrom<ScopeRow> for Scope {
    type Error = StoreError;

    fn try_from(row: ScopeRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.id,
            identifier: row
                .identifier
                .parse()
                .map_err(|e| corrupt("oauthost_scopes", e))?,
            title: row.title,
            enabled: row.enabled,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ClientRow {
    id: i64,
    identifier: String,
    title: String,
    secret_hash: Option<Vec<u8>>,
    client_type: String,
    registrant_id: i64,
    description: String,
    link: Option<String>,
    token_lifetime: i64,
    hash_sign_supported: bool,
    grant_types: String,
    created_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_clients";
        Ok(Self {
            id: row.id,
            identifier: row.identifier,
            title: row.title,
            secret_hash: row
                .secret_hash
                .as_deref()
                .map(|bytes| hash(TABLE, bytes))
                .transpose()?,
            client_type: row.client_type.parse().map_err(|e| corrupt(TABLE, e))?,
            registrant_id: row.registrant_id,
            description: row.description,
            link: row.link,
            token_lifetime: row.token_lifetime,
            hash_sign_supported: row.hash_sign_supported,
            grant_types: row.grant_types.parse().map_err(|e| corrupt(TABLE, e))?,
            created_at: timestamp(TABLE, row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ClientSummaryRow {
    #[sqlx(flatten)]
    client: ClientRow,
    registrant: String,
}

impl TryFrom<ClientSummaryRow> for ClientSummary {
    type Error = StoreError;

    fn try_from(row: ClientSummaryRow) -> StoreResult<Self> {
        Ok(Self {
            client: row.client.try_into()?,
            registrant: row.registrant,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CodeRow {
    id: i64,
    code_hash: Vec<u8>,
    client_id: i64,
    user_id: i64,
    redirect_uri: String,
    redirect_uri_explicit: bool,
    scopes: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    issued_at: i64,
    expires_at: i64,
    consumed: bool,
}

impl TryFrom<CodeRow> for AuthorizationCode {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_authorization_codes";
        Ok(Self {
            id: row.id,
            code_hash: hash(TABLE, &row.code_hash)?,
            client_id: row.client_id,
            user_id: row.user_id,
            redirect_uri: row.redirect_uri,
            redirect_uri_explicit: row.redirect_uri_explicit,
            scopes: row.scopes.parse().map_err(|e| corrupt(TABLE, e))?,
            code_challenge: row.code_challenge,
            code_challenge_method: row.code_challenge_method,
            issued_at: timestamp(TABLE, row.issued_at)?,
            expires_at: timestamp(TABLE, row.expires_at)?,
            consumed: row.consumed,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: i64,
    access_token_hash: Vec<u8>,
    refresh_token_hash: Option<Vec<u8>>,
    user_id: Option<i64>,
    client_id: i64,
    code_id: Option<i64>,
    scopes: String,
    issued_at: i64,
    expires_at: i64,
    revoked: bool,
    refresh_family: Option<String>,
    refresh_rotated: bool,
}

impl TryFrom<TokenRow> for Token {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_tokens";
        Ok(Self {
            id: row.id,
            access_token_hash: hash(TABLE, &row.access_token_hash)?,
            refresh_token_hash: row
                .refresh_token_hash
                .as_deref()
                .map(|bytes| hash(TABLE, bytes))
                .transpose()?,
            user_id: row.user_id,
            client_id: row.client_id,
            code_id: row.code_id,
            scopes: row.scopes.parse().map_err(|e| corrupt(TABLE, e))?,
            issued_at: timestamp(TABLE, row.issued_at)?,
            expires_at: timestamp(TABLE, row.expires_at)?,
            revoked: row.revoked,
            refresh_family: row.refresh_family,
            refresh_rotated: row.refresh_rotated,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenDetailsRow {
    #[sqlx(flatten)]
    token: TokenRow,
    client_identifier: String,
    username: Option<String>,
    user_active: bool,
}

impl TryFrom<TokenDetailsRow> for TokenDetails {
    type Error = StoreError;

    fn try_from(row: TokenDetailsRow) -> StoreResult<Self> {
        Ok(Self {
            token: row.token.try_into()?,
            client_identifier: row.client_identifier,
            username: row.username,
            user_active: row.user_active,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id_hash: Vec<u8>,
    data: Vec<u8>,
    expires_at: i64,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> StoreResult<Self> {
        const TABLE: &str = "oauthost_sessions";
        Ok(Self {
            id_hash: hash(TABLE, &row.id_hash)?,
            data: row.data,
            expires_at: timestamp(TABLE, row.expires_at)?,
        })
    }
}

/// Maps a unique-constraint violation to [`StoreError::Duplicate`], anything else to
/// [`StoreError::Database`].
pub(super) fn duplicate_or(error: sqlx::Error, what: &'static str, value: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
            what,
            value: value.to_owned(),
        },
        _ => StoreError::Database(error),
    }
}
