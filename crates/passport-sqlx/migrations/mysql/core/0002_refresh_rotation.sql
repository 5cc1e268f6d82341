-- Refresh token rotation remembers when a token was used and what it became, for the reuse
-- grace (refresh_token_reuse_grace).
ALTER TABLE oauth_refresh_tokens
    ADD COLUMN rotated_at DATETIME(6) NULL,
    ADD COLUMN rotated_to VARBINARY(255) NULL;
