-- Change notifications for caches of validated tokens: every UPDATE or DELETE of tokens,
-- users or clients, whatever code runs it, notifies channel oauthost_changes at commit with
-- the token's id, or '*' (anything may have changed). Statement-level, so that revoking many
-- tokens at once sends one notification rather than thousands.

CREATE FUNCTION oauthost_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed  BIGINT;
    token_id BIGINT;
BEGIN
    SELECT count(*) INTO changed FROM old_rows;
    IF changed > 64 THEN
        PERFORM pg_notify('oauthost_changes', '*');
    ELSE
        FOR token_id IN SELECT id FROM old_rows LOOP
            PERFORM pg_notify('oauthost_changes', token_id::text);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION oauthost_everything_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oauthost_changes', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER oauthost_tokens_updated AFTER UPDATE ON oauthost_tokens
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION oauthost_tokens_changed();
CREATE TRIGGER oauthost_tokens_deleted AFTER DELETE ON oauthost_tokens
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION oauthost_tokens_changed();
CREATE TRIGGER oauthost_tokens_truncated AFTER TRUNCATE ON oauthost_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION oauthost_everything_changed();
CREATE TRIGGER oauthost_users_changed AFTER UPDATE OR DELETE OR TRUNCATE ON oauthost_users
    FOR EACH STATEMENT EXECUTE FUNCTION oauthost_everything_changed();
CREATE TRIGGER oauthost_clients_changed AFTER UPDATE OR DELETE OR TRUNCATE ON oauthost_clients
    FOR EACH STATEMENT EXECUTE FUNCTION oauthost_everything_changed();
