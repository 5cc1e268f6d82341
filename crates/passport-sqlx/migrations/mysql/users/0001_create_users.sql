-- The standalone server's user accounts (the SQL user provider).

CREATE TABLE IF NOT EXISTS passport_users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name TEXT NOT NULL,
    email VARBINARY(255) NOT NULL UNIQUE,
    password TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
