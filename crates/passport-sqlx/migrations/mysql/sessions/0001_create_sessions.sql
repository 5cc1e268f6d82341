-- Browser sessions of the sign-in and consent pages.

CREATE TABLE IF NOT EXISTS passport_sessions (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    user_id VARBINARY(255) NULL,
    data MEDIUMTEXT NOT NULL DEFAULT ('{}'),
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    INDEX passport_sessions_expires_at_index (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
