-- A live access token whose row is deleted (a Laravel application's `$token->delete()`, or
-- another program) reaches the revocation feed too, so every instance drops it from its cache
-- at once. Rows that are revoked or expired (what purges delete) are not recorded.
DROP TRIGGER IF EXISTS passport_feed_token_deleted;
CREATE TRIGGER passport_feed_token_deleted AFTER DELETE ON oauth_access_tokens
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
SELECT 'token', OLD.id, UTC_TIMESTAMP(6) FROM DUAL
WHERE NOT OLD.revoked AND (OLD.expires_at IS NULL OR OLD.expires_at > UTC_TIMESTAMP(6));
