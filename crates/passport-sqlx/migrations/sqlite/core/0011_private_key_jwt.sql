-- private_key_jwt client authentication (RFC 7523 §2.2): a client's registered JWK Set, and
-- the assertions already used (`id` is a hash of the client id and the assertion's jti), kept
-- until they expire so that no instance accepts one twice.
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT NULL;

CREATE TABLE oauth_client_assertions (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at TEXT NOT NULL
);
