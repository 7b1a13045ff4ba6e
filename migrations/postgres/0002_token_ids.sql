-- Tokens get an id of their own, so that an administrator can list and revoke them without
-- seeing their digests.
ALTER TABLE api_tokens ADD COLUMN id TEXT COLLATE "C";
UPDATE api_tokens SET id = substr(md5(random()::text || encode(token_hash, 'hex')), 1, 16) WHERE id IS NULL;
ALTER TABLE api_tokens ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX api_tokens_by_id ON api_tokens (id);
