-- A deleted user's cached tokens leave every instance's cache (the revocation feed is core's).
DROP TRIGGER IF EXISTS passport_feed_user_deleted;
CREATE TRIGGER passport_feed_user_deleted AFTER DELETE ON passport_users
FOR EACH ROW INSERT INTO passport_revocations (kind, subject, created_at)
VALUES ('user', CAST(OLD.id AS CHAR), UTC_TIMESTAMP(6));
