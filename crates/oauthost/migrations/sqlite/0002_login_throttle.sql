-- Failed logins, counted per key ("user:NAME" or "addr:IP") to throttle password guessing.
CREATE TABLE oauthost_login_failures (
    key          TEXT   NOT NULL PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);
