-- OpenID Connect claims of the standalone server's users: when the email address was verified
-- (email_verified). updated_at already exists.
ALTER TABLE passport_users ADD COLUMN email_verified_at DATETIME(6) NULL;
