-- Per-client policies of the modern OAuth standards: pushed authorization requests required
-- (RFC 9126 §6) and DPoP-bound access tokens required (RFC 9449 §5.2).
ALTER TABLE oauth_clients
    ADD COLUMN require_pushed_authorization_requests TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN dpop_bound_access_tokens TINYINT(1) NOT NULL DEFAULT 0;
