-- Many tokens have no user (client_credentials), no authorization code (client_credentials,
-- password grant), no refresh token or no refresh family: index only the tokens that have
-- one, so issuing those writes up to four index entries fewer. Lookups by a value
-- (`user_id = $1`, `code_id = $1`, `refresh_family = $1`, `refresh_token_hash = $1`, and the
-- foreign keys' `ON DELETE CASCADE` and `SET NULL`) imply IS NOT NULL and still use the
-- indexes; refresh tokens stay unique.
DROP INDEX oauthost_tokens_user;
CREATE INDEX oauthost_tokens_user ON oauthost_tokens (user_id) WHERE user_id IS NOT NULL;
DROP INDEX oauthost_tokens_code;
CREATE INDEX oauthost_tokens_code ON oauthost_tokens (code_id) WHERE code_id IS NOT NULL;
DROP INDEX oauthost_tokens_family;
CREATE INDEX oauthost_tokens_family ON oauthost_tokens (refresh_family)
    WHERE refresh_family IS NOT NULL;
ALTER TABLE oauthost_tokens DROP CONSTRAINT oauthost_tokens_refresh_token_hash_key;
CREATE UNIQUE INDEX oauthost_tokens_refresh_hash ON oauthost_tokens (refresh_token_hash)
    WHERE refresh_token_hash IS NOT NULL;
