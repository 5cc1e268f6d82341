-- OpenID Connect: clients get post-logout redirect URIs and the resource-server flag for
-- introspection; the signing keys move into the database, so every instance shares one key
-- set (private keys sealed with the server secret).
ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE oauth_clients ADD COLUMN can_introspect BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE passport_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    activates_at TEXT NOT NULL,
    retired_at TEXT NULL
);
