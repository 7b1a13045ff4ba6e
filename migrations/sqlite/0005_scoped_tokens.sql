-- API tokens with scopes (space-separated; NULL for a classic token, which may do all its user
-- may) and an optional expiry (milliseconds since the Unix epoch).
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
