-- Pushed authorization requests (RFC 9126): the parameters a client posted to the PAR endpoint,
-- until the browser brings their request_uri to the authorize endpoint (single use, bound to
-- the client, short-lived). The id is the SHA-256 of the request_uri's random part; expired
-- rows are purged with the sessions.
CREATE TABLE IF NOT EXISTS oauth_pushed_requests (
    id VARBINARY(255) NOT NULL PRIMARY KEY,
    client_id VARBINARY(255) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
