-- A live access token whose row is deleted (a Laravel application's `$token->delete()`, or
-- another program) reaches the revocation feed too, so every instance drops it from its cache
-- at once. Rows that are revoked or expired (what purges delete) are not recorded.
CREATE TRIGGER passport_feed_token_deleted AFTER DELETE ON oauth_access_tokens
WHEN NOT OLD.revoked AND (OLD.expires_at IS NULL OR julianday(OLD.expires_at) > julianday('now'))
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('token', OLD.id);
END;
