-- A database made by release 1 (one sqlx migration, version 20260101000001, which created
-- every table) becomes what core, users and sessions 0001 make today. Our own tables get names
-- of their own, so they never collide with an application's `users` and `sessions` (a Laravel
-- database has both); release 1 created these two, so renaming them touches nothing we did not
-- create. SQLite cannot rename an
-- index: the sessions index is made again under its new name.
ALTER TABLE users RENAME TO passport_users;
ALTER TABLE sessions RENAME TO passport_sessions;
DROP INDEX sessions_expires_at_index;
CREATE INDEX passport_sessions_expires_at_index ON passport_sessions (expires_at);

-- Extension parameters of the authorization request (nonce, max_age), carried to the code.
ALTER TABLE oauth_auth_codes ADD COLUMN extensions TEXT NULL;

-- The server secret every instance shares (HMAC keys are derived from it).
CREATE TABLE passport_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
