-- Most tokens have no authorization code (client_credentials, password grant) and many no
-- refresh family: index only the tokens that have one, so issuing those writes two index
-- entries fewer. Lookups by a value (`code_id = ?`, `refresh_family = ?`, and the foreign
-- key's `ON DELETE SET NULL`) imply IS NOT NULL and still use the indexes.
DROP INDEX oauthost_tokens_code;
CREATE INDEX oauthost_tokens_code ON oauthost_tokens (code_id) WHERE code_id IS NOT NULL;
DROP INDEX oauthost_tokens_family;
CREATE INDEX oauthost_tokens_family ON oauthost_tokens (refresh_family)
    WHERE refresh_family IS NOT NULL;
