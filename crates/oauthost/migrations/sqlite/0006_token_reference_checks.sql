-- On PostgreSQL, this migration checks a token's client and user once per statement rather
-- than with a foreign key per row. SQLite checks its foreign keys cheaply (an index lookup,
-- no row lock): the foreign keys of 0001 stay, and there is nothing to change.
SELECT 1;
