-- A user deleted (alone, by a reset or by a snapshot's import) takes their apps' grants in that
-- site with them: a user made again with the same account id is someone new to every app.
CREATE INDEX oauth_grants_by_account ON oauth_grants (account_id);

CREATE FUNCTION users_deleted_end_their_grants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM oauth_grant_sites s
    USING oauth_grants g, gone
    WHERE s.grant_id = g.grant_id AND g.account_id = gone.account_id AND s.site = gone.site;
    RETURN NULL;
END
$$;

-- Per statement: a reset of a thousand users looks their grants up once.
CREATE TRIGGER users_deleted_end_their_grants AFTER DELETE ON users
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION users_deleted_end_their_grants();
