-- Failure counters of the brute-force limits, shared by every instance on this database, so
-- spreading guesses over a fleet gains an attacker nothing. `key` is the SHA-256 of the
-- counter's name and key (client id or account, and address): no email or address is stored.
CREATE TABLE passport_failures (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_ends TIMESTAMPTZ NOT NULL
);
