-- The FAPI 2.0 Security Profile, per client (README: FAPI 2.0).
ALTER TABLE oauth_clients ADD COLUMN fapi_profile TINYINT(1) NOT NULL DEFAULT 0;
