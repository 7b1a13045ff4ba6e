-- Users, their API tokens (hashed) and their properties.

CREATE TABLE users (
    account_id   TEXT    NOT NULL PRIMARY KEY,
    email        TEXT    NOT NULL,
    -- The email lower-cased: Basic authentication matches emails case-insensitively.
    email_key    TEXT    NOT NULL UNIQUE,
    display_name TEXT    NOT NULL,
    admin        INTEGER NOT NULL DEFAULT 0,
    active       INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE api_tokens (
    -- SHA-256 of the token; the token itself is never stored.
    token_hash BLOB NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES users (account_id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX api_tokens_by_account ON api_tokens (account_id);

-- Keys compare with SQLite's BINARY collation: byte order of UTF-8, which is code-point order.
CREATE TABLE properties (
    account_id TEXT    NOT NULL REFERENCES users (account_id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    -- The JSON text exactly as sent, without surrounding white space.
    value      TEXT    NOT NULL,
    -- 0 when created, counted up by each update: tells 201 from 200 in the same statement.
    revision   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
