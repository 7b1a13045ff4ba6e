-- Each token issued forgets its app's ended grants, and a refresh finds its token's grant by its
-- app: both look grants up by client.
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id, ends_at);
