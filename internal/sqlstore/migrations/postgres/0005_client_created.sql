-- When a client was registered: set on insert and never changed by a
-- replacement, so that access tokens issued to an earlier registration of
-- the same id (deleted, then registered again) stop working.
ALTER TABLE clients ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE clients SET created_at = updated_at;
