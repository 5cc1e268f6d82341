-- Browser sessions of the sign-in and consent pages.

CREATE TABLE passport_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX passport_sessions_expires_at_index ON passport_sessions (expires_at);
