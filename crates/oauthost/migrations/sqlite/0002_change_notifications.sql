-- Change notifications for caches of validated tokens. SQLite needs no schema for them:
-- the store watches its own connections with update and commit hooks. This migration keeps
-- both databases at the same version.
SELECT 1;
