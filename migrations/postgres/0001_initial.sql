-- Users, their API tokens (hashed) and their properties.
-- Text that is compared or sorted uses the "C" collation: byte order of UTF-8, which is code-point
-- order, and exact equality ('a' <> 'A', 'ü' <> 'u' || U+0308), the same as SQLite's BINARY.

CREATE TABLE users (
    account_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    email        TEXT    NOT NULL,
    -- The email lower-cased: Basic authentication matches emails case-insensitively.
    email_key    TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name TEXT    NOT NULL,
    admin        BOOLEAN NOT NULL DEFAULT FALSE,
    active       BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE api_tokens (
    -- SHA-256 of the token; the token itself is never stored.
    token_hash BYTEA NOT NULL PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES users (account_id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX api_tokens_by_account ON api_tokens (account_id);

CREATE TABLE properties (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES users (account_id) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    -- The JSON text exactly as sent, without surrounding white space; not jsonb, which would
    -- reorder members, drop spacing and respell numbers.
    value      TEXT   NOT NULL,
    -- 0 when created, counted up by each update: tells 201 from 200 in the same statement.
    revision   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, key)
);
