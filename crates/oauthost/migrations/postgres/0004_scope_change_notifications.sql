-- The caches also keep the scopes each client may be granted: any write to the scopes or
-- to a client's scopes notifies '*', as a user or client change does (migration 2).

CREATE TRIGGER oauthost_scopes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oauthost_scopes FOR EACH STATEMENT EXECUTE FUNCTION oauthost_everything_changed();
CREATE TRIGGER oauthost_client_scopes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oauthost_client_scopes FOR EACH STATEMENT EXECUTE FUNCTION oauthost_everything_changed();
