-- Many tokens have no user (client_credentials), no authorization code (client_credentials,
-- password grant) or no refresh family: index only the tokens that have one, so issuing
-- those writes up to three index entries fewer. Lookups by a value (`user_id = ?`,
-- `code_id = ?`, `refresh_family = ?`, and the foreign keys' `ON DELETE CASCADE` and
-- `SET NULL`) imply IS NOT NULL and still use the indexes (checked with EXPLAIN). The
-- refresh token's UNIQUE index stays whole: SQLite cannot drop a column's constraint
-- without copying the table.
DROP INDEX oauthost_tokens_user;
CREATE INDEX oauthost_tokens_user ON oauthost_tokens (user_id) WHERE user_id IS NOT NULL;
DROP INDEX oauthost_tokens_code;
CREATE INDEX oauthost_tokens_code ON oauthost_tokens (code_id) WHERE code_id IS NOT NULL;
DROP INDEX oauthost_tokens_family;
CREATE INDEX oauthost_tokens_family ON oauthost_tokens (refresh_family)
    WHERE refresh_family IS NOT NULL;
