-- private_key_jwt clients whose keys are fetched from their jwks_uri (RFC 7591 §2).
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT NULL;
