-- Apps (OAuth 2.0 clients and service accounts), their grants, codes and tokens. Apps belong to
-- the server, as Atlassian's developer console does; a grant names the sites it covers. Every
-- secret is stored as a SHA-256 digest. Times are milliseconds since the Unix epoch.

CREATE TABLE apps (
    client_id     TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    -- 'oauth2' or 'serviceAccount'.
    kind          TEXT    NOT NULL,
    secret_hash   BLOB    NOT NULL,
    callback_url  TEXT,
    -- Space-separated, as OAuth writes them.
    scopes        TEXT    NOT NULL,
    auto_consent  INTEGER NOT NULL DEFAULT 0,
    -- A service account's own account id, the same in each of its sites.
    account_id    TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE oauth_grants (
    grant_id     TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    account_id   TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    -- The refresh-token family's absolute end; its inactivity end moves with each refresh.
    ends_at      INTEGER NOT NULL
);

CREATE TABLE oauth_grant_sites (
    grant_id TEXT    NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    site     INTEGER NOT NULL REFERENCES sites (site) ON DELETE CASCADE,
    PRIMARY KEY (grant_id, site)
) WITHOUT ROWID;

CREATE TABLE oauth_codes (
    code_hash    BLOB    NOT NULL PRIMARY KEY,
    grant_id     TEXT    NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    redirect_uri TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE TABLE oauth_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    -- 'access' or 'refresh'.
    kind       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    -- When a refresh token was exchanged for a new one; NULL while it is the family's newest.
    rotated_at INTEGER
);

CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
