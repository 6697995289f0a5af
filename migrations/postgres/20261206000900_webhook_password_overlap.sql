-- A changed webhook password: the previous one keeps working for an overlap
-- window (or until the first delivery with the new one), so that no
-- delivery of a hook still holding it is refused while it is updated.
ALTER TABLE providers ADD COLUMN previous_webhook_password_verifier TEXT;
ALTER TABLE providers ADD COLUMN previous_webhook_password_until BIGINT;
