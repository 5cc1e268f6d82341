-- A database made by release 1 (one sqlx migration, version 20260101000001, which created
-- every table) becomes what core, users and sessions 0001 make today. Our own tables get names
-- of their own, so they never collide with an application's `users` and `sessions` (a Laravel
-- database has both); release 1 created these two, so renaming them touches nothing we did not
-- create. Their sequence, keys and
-- indexes are renamed too: an application creating its own `users` table later would
-- otherwise find `users_id_seq` or `users_pkey` taken.
ALTER TABLE users RENAME TO passport_users;
ALTER SEQUENCE users_id_seq RENAME TO passport_users_id_seq;
ALTER INDEX users_pkey RENAME TO passport_users_pkey;
ALTER INDEX users_email_key RENAME TO passport_users_email_key;
ALTER TABLE sessions RENAME TO passport_sessions;
ALTER INDEX sessions_pkey RENAME TO passport_sessions_pkey;
ALTER INDEX sessions_expires_at_index RENAME TO passport_sessions_expires_at_index;

-- Extension parameters of the authorization request (nonce, max_age), carried to the code.
ALTER TABLE oauth_auth_codes ADD COLUMN extensions TEXT NULL;

-- The server secret every instance shares (HMAC keys are derived from it).
CREATE TABLE passport_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
