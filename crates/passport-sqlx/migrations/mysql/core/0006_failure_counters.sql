-- Failure counters of the brute-force limits, shared by every instance on this database, so
-- spreading guesses over a fleet gains an attacker nothing. `key` is the SHA-256 of the
-- counter's name and key (client id or account, and address): no email or address is stored.
CREATE TABLE IF NOT EXISTS passport_failures (
    `key` VARBINARY(255) NOT NULL PRIMARY KEY,
    failures INT NOT NULL,
    window_ends DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
