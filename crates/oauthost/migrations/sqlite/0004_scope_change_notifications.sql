-- The caches also keep the scopes each client may be granted. SQLite needs no schema for
-- their change notifications (the store's update hook sees writes to the scope tables):
-- this migration keeps both databases at the same version.
SELECT 1;
