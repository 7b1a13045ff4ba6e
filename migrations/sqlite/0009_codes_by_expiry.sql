-- Each consent forgets the grants whose code expired unexchanged: codes are looked up by expiry.
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);
