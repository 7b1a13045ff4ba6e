-- A user deleted (alone, by a reset or by a snapshot's import) takes their apps' grants in that
-- site with them: a user made again with the same account id is someone new to every app.
CREATE INDEX oauth_grants_by_account ON oauth_grants (account_id);

CREATE TRIGGER users_deleted_end_their_grants AFTER DELETE ON users
BEGIN
    DELETE FROM oauth_grant_sites
    WHERE site = OLD.site
      AND grant_id IN (SELECT grant_id FROM oauth_grants WHERE account_id = OLD.account_id);
END;
