-- OpenID Connect: clients get post-logout redirect URIs and the resource-server flag for
-- introspection; the signing keys move into the database, so every instance shares one key
-- set (private keys sealed with the server secret).
CREATE TABLE IF NOT EXISTS passport_keys (
    kid VARBINARY(255) NOT NULL PRIMARY KEY,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    activates_at DATETIME(6) NOT NULL,
    retired_at DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE oauth_clients
    ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT ('[]'),
    ADD COLUMN can_introspect TINYINT(1) NOT NULL DEFAULT 0;
