-- A deleted user's cached tokens leave every instance's cache (the revocation feed is core's).
CREATE TRIGGER passport_feed_user_deleted AFTER DELETE ON passport_users
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('user', OLD.id);
END;
