-- oauthost's tables. Times are Unix seconds; hashes are SHA-256 digests (32 bytes).

CREATE TABLE oauthost_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 150),
    password_hash TEXT,
    is_staff      BOOLEAN NOT NULL DEFAULT FALSE,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE oauthost_scopes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT    NOT NULL UNIQUE CHECK (length(identifier) BETWEEN 1 AND 100),
    title      TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX oauthost_scopes_title ON oauthost_scopes (title);

CREATE TABLE oauthost_clients (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier          TEXT    NOT NULL UNIQUE,
    title               TEXT    NOT NULL UNIQUE,
    secret_hash         BLOB,
    client_type         TEXT    NOT NULL CHECK (client_type IN ('confidential', 'public')),
    registrant_id       INTEGER NOT NULL REFERENCES oauthost_users (id),
    description         TEXT    NOT NULL DEFAULT '',
    link                TEXT,
    token_lifetime      BIGINT  NOT NULL DEFAULT 3600 CHECK (token_lifetime > 0),
    hash_sign_supported BOOLEAN NOT NULL DEFAULT TRUE,
    grant_types         TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL
);
CREATE INDEX oauthost_clients_registrant ON oauthost_clients (registrant_id);

CREATE TABLE oauthost_client_scopes (
    client_id INTEGER NOT NULL REFERENCES oauthost_clients (id) ON DELETE CASCADE,
    scope_id  INTEGER NOT NULL REFERENCES oauthost_scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, scope_id)
);
CREATE INDEX oauthost_client_scopes_scope ON oauthost_client_scopes (scope_id);

CREATE TABLE oauthost_redirect_endpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id INTEGER NOT NULL REFERENCES oauthost_clients (id) ON DELETE CASCADE,
    uri       TEXT    NOT NULL,
    UNIQUE (client_id, uri)
);

CREATE TABLE oauthost_authorization_codes (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash             BLOB    NOT NULL UNIQUE,
    client_id             INTEGER NOT NULL REFERENCES oauthost_clients (id) ON DELETE CASCADE,
    user_id               INTEGER NOT NULL REFERENCES oauthost_users (id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    -- Whether the request named it: only then must the token request repeat it.
    redirect_uri_explicit BOOLEAN NOT NULL DEFAULT TRUE,
    scopes                TEXT    NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
    issued_at             BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    consumed              BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX oauthost_authorization_codes_client ON oauthost_authorization_codes (client_id);
CREATE INDEX oauthost_authorization_codes_expiry ON oauthost_authorization_codes (expires_at);

CREATE TABLE oauthost_tokens (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    access_token_hash  BLOB    NOT NULL UNIQUE,
    refresh_token_hash BLOB UNIQUE,
    token_type         TEXT    NOT NULL DEFAULT 'bearer' CHECK (token_type = 'bearer'),
    user_id            INTEGER REFERENCES oauthost_users (id) ON DELETE CASCADE,
    client_id          INTEGER NOT NULL REFERENCES oauthost_clients (id) ON DELETE CASCADE,
    code_id            INTEGER REFERENCES oauthost_authorization_codes (id) ON DELETE SET NULL,
    scopes             TEXT    NOT NULL,
    issued_at          BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    revoked            BOOLEAN NOT NULL DEFAULT FALSE,
    refresh_family     TEXT,
    refresh_rotated    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX oauthost_tokens_client ON oauthost_tokens (client_id);
CREATE INDEX oauthost_tokens_user ON oauthost_tokens (user_id);
CREATE INDEX oauthost_tokens_code ON oauthost_tokens (code_id);
CREATE INDEX oauthost_tokens_family ON oauthost_tokens (refresh_family);
CREATE INDEX oauthost_tokens_expiry ON oauthost_tokens (expires_at);
CREATE INDEX oauthost_tokens_issued ON oauthost_tokens (issued_at);

CREATE TABLE oauthost_sessions (
    id_hash    BLOB   NOT NULL PRIMARY KEY,
    data       BLOB   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauthost_sessions_expiry ON oauthost_sessions (expires_at);

-- Failed logins, counted per key ("user:NAME" or "addr:IP") to throttle password guessing.
CREATE TABLE oauthost_login_failures (
    key          TEXT   NOT NULL PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);
