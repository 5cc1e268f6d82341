-- The revocation feed: every revocation, in order, so every instance can drop what it cached
-- (tokens, clients, users, keys). Triggers record them, whoever writes the rows: this server,
-- another instance, the CLI, or an application updating them itself. MySQL has no
-- LISTEN/NOTIFY: instances poll the feed (as on SQLite).
--
-- Each trigger is one statement (no BEGIN … END, so no client DELIMITER is needed); the
-- condition the other dialects write as `WHEN` is the `WHERE` of an INSERT … SELECT. Times
-- are UTC_TIMESTAMP, whatever the writer's session time zone.
CREATE TABLE IF NOT EXISTS passport_revocations (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(32) NOT NULL,
    subject TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS passport_feed_token_revoked;
CREATE TRIGGER passport_feed_token_revoked AFTER UPDATE ON oauth_access_tokens
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
SELECT 'token', NEW.id, UTC_TIMESTAMP(6) FROM DUAL WHERE NEW.revoked AND NOT OLD.revoked;

DROP TRIGGER IF EXISTS passport_feed_client_revoked;
CREATE TRIGGER passport_feed_client_revoked AFTER UPDATE ON oauth_clients
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
SELECT 'client', NEW.id, UTC_TIMESTAMP(6) FROM DUAL WHERE NEW.revoked AND NOT OLD.revoked;

DROP TRIGGER IF EXISTS passport_feed_client_deleted;
CREATE TRIGGER passport_feed_client_deleted AFTER DELETE ON oauth_clients
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
VALUES ('client', OLD.id, UTC_TIMESTAMP(6));

DROP TRIGGER IF EXISTS passport_feed_key_retired;
CREATE TRIGGER passport_feed_key_retired AFTER UPDATE ON passport_keys
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
SELECT 'key', NEW.kid, UTC_TIMESTAMP(6) FROM DUAL WHERE NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL;
