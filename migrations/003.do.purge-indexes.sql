-- The purge job (jobs/purge-sessions.ts) finds what it deletes through these, a bounded batch at a time.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
