-- The revocation feed: every revocation, in order, so every instance can drop what it cached
-- (tokens, clients, users, keys). Triggers record them, whoever writes the rows: this server,
-- another instance, the CLI, or an application updating them itself; each transaction that
-- records one also notifies `passport_revocations`, so listening instances wake at once.
CREATE TABLE passport_revocations (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION passport_feed_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'oauth_access_tokens' THEN
        INSERT INTO passport_revocations (kind, subject) VALUES ('token', NEW.id);
    ELSIF TG_TABLE_NAME = 'oauth_clients' AND TG_OP = 'DELETE' THEN
        INSERT INTO passport_revocations (kind, subject) VALUES ('client', OLD.id);
    ELSIF TG_TABLE_NAME = 'oauth_clients' THEN
        INSERT INTO passport_revocations (kind, subject) VALUES ('client', NEW.id);
    ELSIF TG_TABLE_NAME = 'passport_keys' THEN
        INSERT INTO passport_revocations (kind, subject) VALUES ('key', NEW.kid);
    ELSIF TG_TABLE_NAME = 'passport_users' THEN
        INSERT INTO passport_revocations (kind, subject) VALUES ('user', OLD.id::text);
    END IF;
    PERFORM pg_notify('passport_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER passport_feed_token_revoked AFTER UPDATE OF revoked ON oauth_access_tokens
FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked) EXECUTE FUNCTION passport_feed_record();

CREATE TRIGGER passport_feed_client_revoked AFTER UPDATE OF revoked ON oauth_clients
FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked) EXECUTE FUNCTION passport_feed_record();

CREATE TRIGGER passport_feed_client_deleted AFTER DELETE ON oauth_clients
FOR EACH ROW EXECUTE FUNCTION passport_feed_record();

CREATE TRIGGER passport_feed_key_retired AFTER UPDATE OF retired_at ON passport_keys
FOR EACH ROW WHEN (NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL) EXECUTE FUNCTION passport_feed_record();
