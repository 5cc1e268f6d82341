-- A live access token whose row is deleted (a Laravel application's `$token->delete()`, or
-- another program) reaches the revocation feed too, so every instance drops it from its cache
-- at once. Rows that are revoked or expired (what purges delete) are not recorded.
CREATE FUNCTION passport_feed_token_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('token', OLD.id);
    PERFORM pg_notify('passport_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER passport_feed_token_deleted AFTER DELETE ON oauth_access_tokens
FOR EACH ROW WHEN (NOT OLD.revoked AND (OLD.expires_at IS NULL OR OLD.expires_at > now()))
EXECUTE FUNCTION passport_feed_token_deleted();
