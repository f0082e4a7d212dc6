DROP INDEX sessions_revoked_at;
DROP INDEX refresh_tokens_expires_at;
