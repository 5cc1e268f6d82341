-- Dynamic client registration (RFC 7591, RFC 7592): initial access tokens the operator issued
-- (`id` is the SHA-256 of the token) and the registration access token of each registered
-- client (its SHA-256). No token is stored in the clear.
CREATE TABLE oauth_registration_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE oauth_client_registrations (
    client_id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL
);
