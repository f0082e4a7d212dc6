ALTER TABLE refresh_tokens
  ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE CASCADE,
  ADD COLUMN revoked_at timestamptz,
  DROP CONSTRAINT refresh_tokens_session_id_fkey;
UPDATE refresh_tokens r SET user_id = s.user_id, revoked_at = s.revoked_at FROM sessions s WHERE s.id = r.session_id;
ALTER TABLE refresh_tokens ALTER COLUMN user_id SET NOT NULL;
ALTER INDEX refresh_tokens_session_id RENAME TO refresh_tokens_family_id;
ALTER TABLE refresh_tokens RENAME COLUMN session_id TO family_id;
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
DROP TABLE sessions;
