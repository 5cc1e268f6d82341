-- The core's tables: Passport 13's names and columns, plus the columns our design needs
-- (refresh tokens carry their grant, so no ciphertext is needed; token values are stored only
-- as SHA-256 hashes; codes carry the authorization request's extension parameters).
--
-- MySQL / MariaDB: ids and the other text we look rows up by are VARBINARY(255), compared byte
-- for byte as SQLite and PostgreSQL compare them (TEXT cannot be a key without a prefix
-- length, and a text collation ignores trailing spaces, the default ones case too); other
-- text is utf8mb4 (utf8mb4_bin). Times are DATETIME(6) holding UTC; booleans are TINYINT(1).
-- Every file can run again after failing midway (DDL commits by itself): tables are created
-- IF NOT EXISTS, triggers dropped first, and a file holds at most one ALTER TABLE, as its last
-- statement. Statements end with `;` and hold none inside (see migrate.rs).
--
-- Refresh tokens get two indexes the other dialects lack (client_id, user_id): InnoDB locks
-- every row an UPDATE scans, so revoking a client's or a user's refresh tokens without them
-- would hold every refresh token (and block issuing new ones) until it commits.

CREATE TABLE IF NOT EXISTS oauth_clients (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    owner_type VARBINARY(255) NULL,
    owner_id VARBINARY(255) NULL,
    name TEXT NOT NULL,
    secret TEXT NULL,
    provider VARBINARY(255) NULL,
    redirect_uris TEXT NOT NULL DEFAULT ('[]'),
    grant_types TEXT NOT NULL DEFAULT ('[]'),
    scopes TEXT NULL,
    skips_authorization TINYINT(1) NOT NULL DEFAULT 0,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    INDEX oauth_clients_owner_index (owner_type, owner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_access_tokens (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    user_id VARBINARY(255) NULL,
    client_id VARBINARY(255) NOT NULL,
    name TEXT NULL,
    scopes TEXT NULL,
    family_id VARBINARY(255) NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    INDEX oauth_access_tokens_family_id_index (family_id),
    INDEX oauth_access_tokens_user_id_index (user_id),
    INDEX oauth_access_tokens_client_id_index (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    access_token_id VARBINARY(255) NOT NULL,
    client_id VARBINARY(255) NOT NULL,
    user_id VARBINARY(255) NULL,
    scopes TEXT NOT NULL DEFAULT ('[]'),
    family_id VARBINARY(255) NOT NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    INDEX oauth_refresh_tokens_access_token_id_index (access_token_id),
    INDEX oauth_refresh_tokens_family_id_index (family_id),
    INDEX oauth_refresh_tokens_client_id_index (client_id),
    INDEX oauth_refresh_tokens_user_id_index (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_auth_codes (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    user_id VARBINARY(255) NOT NULL,
    client_id VARBINARY(255) NOT NULL,
    scopes TEXT NULL,
    redirect_uri TEXT NULL,
    code_challenge TEXT NULL,
    code_challenge_method TEXT NULL,
    extensions TEXT NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    INDEX oauth_auth_codes_user_id_index (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_device_codes (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    user_id VARBINARY(255) NULL,
    client_id VARBINARY(255) NOT NULL,
    user_code VARBINARY(255) NOT NULL UNIQUE,
    scopes TEXT NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    user_approved_at DATETIME(6) NULL,
    last_polled_at DATETIME(6) NULL,
    `interval` INT NOT NULL DEFAULT 5,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    INDEX oauth_device_codes_user_id_index (user_id),
    INDEX oauth_device_codes_client_id_index (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS oauth_pending_authorizations (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    session_id VARBINARY(255) NOT NULL,
    user_id VARBINARY(255) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    INDEX oauth_pending_authorizations_session_id_index (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The server secret every instance shares (HMAC keys are derived from it).
CREATE TABLE IF NOT EXISTS passport_secrets (
    name VARBINARY(255) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
