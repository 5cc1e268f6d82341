-- private_key_jwt client authentication (RFC 7523 §2.2): a client's registered JWK Set, and
-- the assertions already used (`id` is a hash of the client id and the assertion's jti), kept
-- until they expire so that no instance accepts one twice.
CREATE TABLE IF NOT EXISTS oauth_client_assertions (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE oauth_clients ADD COLUMN jwks MEDIUMTEXT NULL;
