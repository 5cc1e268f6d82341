-- DPoP (RFC 9449). Proofs seen, by the SHA-256 of their key thumbprint and `jti`, until their
-- `iat` window closes: a second use of one is a replay on every instance sharing this database
-- (§11.1). And the key a public client's refresh token is bound to (§5).
CREATE TABLE IF NOT EXISTS passport_dpop_proofs (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE oauth_refresh_tokens ADD COLUMN dpop_jkt TEXT NULL;
