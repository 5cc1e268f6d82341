-- Dynamic client registration (RFC 7591, RFC 7592): initial access tokens the operator issued
-- (`id` is the SHA-256 of the token) and the registration access token of each registered
-- client (its SHA-256). No token is stored in the clear.
CREATE TABLE IF NOT EXISTS oauth_registration_tokens (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_client_registrations (
    client_id VARBINARY(255) NOT NULL PRIMARY KEY,
    token_hash TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
