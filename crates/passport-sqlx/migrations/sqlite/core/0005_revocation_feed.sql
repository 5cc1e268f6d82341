-- The revocation feed: every revocation, in order, so every instance can drop what it cached
-- (tokens, clients, users, keys). Triggers record them, whoever writes the rows: this server,
-- another instance, the CLI, or an application updating them itself.
CREATE TABLE passport_revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TRIGGER passport_feed_token_revoked AFTER UPDATE OF revoked ON oauth_access_tokens
WHEN NEW.revoked AND NOT OLD.revoked
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('token', NEW.id);
END;

CREATE TRIGGER passport_feed_client_revoked AFTER UPDATE OF revoked ON oauth_clients
WHEN NEW.revoked AND NOT OLD.revoked
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('client', NEW.id);
END;

CREATE TRIGGER passport_feed_client_deleted AFTER DELETE ON oauth_clients
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('client', OLD.id);
END;

CREATE TRIGGER passport_feed_key_retired AFTER UPDATE OF retired_at ON passport_keys
WHEN NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL
BEGIN
    INSERT INTO passport_revocations (kind, subject) VALUES ('key', NEW.kid);
END;
