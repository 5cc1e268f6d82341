-- OpenID Connect: a refresh token of a grant made by an authentication request remembers when
-- the user authenticated, so the id_token of a refresh carries the original auth_time
-- (OpenID Connect Core §12.2). NULL for every other grant.
ALTER TABLE oauth_refresh_tokens ADD COLUMN auth_time DATETIME(6) NULL;
