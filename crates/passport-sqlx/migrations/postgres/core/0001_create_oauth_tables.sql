-- The core's tables: Passport 13's names and columns, plus the columns our design needs
-- (refresh tokens carry their grant, so no ciphertext is needed; token values are stored only
-- as SHA-256 hashes; codes carry the authorization request's extension parameters).

CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY NOT NULL,
    owner_type TEXT NULL,
    owner_id TEXT NULL,
    name TEXT NOT NULL,
    secret TEXT NULL,
    provider TEXT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    scopes TEXT NULL,
    skips_authorization BOOLEAN NOT NULL DEFAULT FALSE,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_clients_owner_index ON oauth_clients (owner_type, owner_id);

CREATE TABLE oauth_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NULL,
    client_id TEXT NOT NULL,
    name TEXT NULL,
    scopes TEXT NULL,
    family_id TEXT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL
);
CREATE INDEX oauth_access_tokens_family_id_index ON oauth_access_tokens (family_id);
CREATE INDEX oauth_access_tokens_user_id_index ON oauth_access_tokens (user_id);
CREATE INDEX oauth_access_tokens_client_id_index ON oauth_access_tokens (client_id);

CREATE TABLE oauth_refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    access_token_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NULL,
    scopes TEXT NOT NULL DEFAULT '[]',
    family_id TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL
);
CREATE INDEX oauth_refresh_tokens_access_token_id_index ON oauth_refresh_tokens (access_token_id);
CREATE INDEX oauth_refresh_tokens_family_id_index ON oauth_refresh_tokens (family_id);

CREATE TABLE oauth_auth_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NULL,
    redirect_uri TEXT NULL,
    code_challenge TEXT NULL,
    code_challenge_method TEXT NULL,
    extensions TEXT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL
);
CREATE INDEX oauth_auth_codes_user_id_index ON oauth_auth_codes (user_id);

CREATE TABLE oauth_device_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NULL,
    client_id TEXT NOT NULL,
    user_code TEXT NOT NULL UNIQUE,
    scopes TEXT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    user_approved_at TIMESTAMPTZ NULL,
    last_polled_at TIMESTAMPTZ NULL,
    "interval" INTEGER NOT NULL DEFAULT 5,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL
);
CREATE INDEX oauth_device_codes_user_id_index ON oauth_device_codes (user_id);
CREATE INDEX oauth_device_codes_client_id_index ON oauth_device_codes (client_id);

CREATE TABLE oauth_pending_authorizations (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_pending_authorizations_session_id_index ON oauth_pending_authorizations (session_id);

-- The server secret every instance shares (HMAC keys are derived from it).
CREATE TABLE passport_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
