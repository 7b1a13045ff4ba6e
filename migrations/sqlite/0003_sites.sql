-- Sites: isolated worlds in one store. Every table's first key is the site its row belongs to;
-- deleting a site deletes everything of it. Site keys are never reused (AUTOINCREMENT), so a
-- key some process still holds for a deleted site names nothing.

CREATE TABLE sites (
    site       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- A UUID, lower case with hyphens.
    cloud_id   TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The default site is key 0; its cloudId is a random version 4 UUID.
INSERT INTO sites (site, cloud_id, name) VALUES (
    0,
    lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
        || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
        || '-' || hex(randomblob(6))),
    'default'
);

CREATE TABLE site_users (
    site         INTEGER NOT NULL REFERENCES sites (site) ON DELETE CASCADE,
    account_id   TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    -- The email lower-cased: Basic authentication matches emails case-insensitively.
    email_key    TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    admin        INTEGER NOT NULL DEFAULT 0,
    active       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (site, account_id),
    UNIQUE (site, email_key)
);

CREATE TABLE site_api_tokens (
    site       INTEGER NOT NULL,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash BLOB    NOT NULL,
    account_id TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    id         TEXT    NOT NULL,
    PRIMARY KEY (site, token_hash),
    UNIQUE (site, id),
    FOREIGN KEY (site, account_id) REFERENCES site_users (site, account_id) ON DELETE CASCADE
);

-- Keys compare with SQLite's BINARY collation: byte order of UTF-8, which is code-point order.
CREATE TABLE site_properties (
    site       INTEGER NOT NULL,
    account_id TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    -- The JSON text exactly as sent, without surrounding white space.
    value      TEXT    NOT NULL,
    -- 0 when created, counted up by each update: tells 201 from 200 in the same statement.
    revision   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, account_id, key),
    FOREIGN KEY (site, account_id) REFERENCES site_users (site, account_id) ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO site_users (site, account_id, email, email_key, display_name, admin, active)
    SELECT 0, account_id, email, email_key, display_name, admin, active FROM users;
INSERT INTO site_api_tokens (site, token_hash, account_id, created_at, id)
    SELECT 0, token_hash, account_id, created_at, id FROM api_tokens;
INSERT INTO site_properties (site, account_id, key, value, revision)
    SELECT 0, account_id, key, value, revision FROM properties;

-- Children first: dropping a parent deletes its rows, which would cascade.
DROP TABLE properties;
DROP TABLE api_tokens;
DROP TABLE users;

ALTER TABLE site_users RENAME TO users;
ALTER TABLE site_api_tokens RENAME TO api_tokens;
ALTER TABLE site_properties RENAME TO properties;

CREATE INDEX api_tokens_by_account ON api_tokens (site, account_id);
