-- Tokens get an id of their own, so that an administrator can list and revoke them without
-- seeing their digests.
ALTER TABLE api_tokens ADD COLUMN id TEXT;
UPDATE api_tokens SET id = lower(hex(randomblob(8))) WHERE id IS NULL;
CREATE UNIQUE INDEX api_tokens_by_id ON api_tokens (id);
