-- A session is one login: the access tokens' `sid` and the family its refresh tokens rotate in.
-- Its row is the one lock that refresh, logout and reuse detection take, and its mark revokes every
-- refresh token of the login, also those issued after the mark by a refresh that raced it.
CREATE TABLE sessions (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  revoked_at timestamptz
);

CREATE INDEX sessions_user_id ON sessions (user_id);

INSERT INTO sessions (id, user_id, created_at, revoked_at)
SELECT family_id, min(user_id::text)::uuid, min(created_at), max(revoked_at)
FROM refresh_tokens GROUP BY family_id;

ALTER TABLE refresh_tokens RENAME COLUMN family_id TO session_id;
ALTER INDEX refresh_tokens_family_id RENAME TO refresh_tokens_session_id;
ALTER TABLE refresh_tokens
  ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE,
  DROP COLUMN user_id,
  DROP COLUMN revoked_at;
