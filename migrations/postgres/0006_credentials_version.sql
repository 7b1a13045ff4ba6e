-- One number that moves, in the changing transaction, whenever users or API tokens change. Each
-- instance caches credentials tagged with the number they were read at, and every request's
-- statement reads it again: a cached answer that the database has since overtaken is never
-- acted on.

CREATE TABLE credentials_version (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    version  BIGINT NOT NULL
);

INSERT INTO credentials_version (version) VALUES (1);

CREATE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credentials_version SET version = version + 1;
    RETURN NULL;
END
$$;

-- Per statement, not per row: a seed of a thousand users moves the number once.
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();

CREATE TRIGGER api_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
