-- Pushed authorization requests (RFC 9126): the parameters a client posted to the PAR endpoint,
-- until the browser brings their request_uri to the authorize endpoint (single use, bound to
-- the client, short-lived). The id is the SHA-256 of the request_uri's random part; expired
-- rows are purged with the sessions.
CREATE TABLE oauth_pushed_requests (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
