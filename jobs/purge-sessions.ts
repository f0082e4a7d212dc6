import type pg from 'pg'

export interface PurgeOptions {
  /** What expired, or was revoked, before this moment goes. */
  before: Date
  /** Rows a statement deletes at most: each batch is a short transaction of its own. */
  batchSize: number
}

export interface Purged { sessions: number, refreshTokens: number }

// A batch of logins revoked before the cut-off, with their refresh tokens.
const REVOKED = `
WITH doomed AS (
  SELECT id FROM sessions WHERE revoked_at < $1 ORDER BY revoked_at LIMIT $2 FOR UPDATE SKIP LOCKED
), tokens AS (
  DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM doomed) RETURNING 1
), gone AS (
  DELETE FROM sessions WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::int AS sessions, (SELECT count(*) FROM tokens)::int AS "refreshTokens"`

// A batch of refresh tokens expired before the cut-off, and the logins this batch leaves without a
// token (the statement still sees the rows it deletes: they are set apart by their hash).
const EXPIRED = `
WITH gone AS (
  DELETE FROM refresh_tokens WHERE token_hash IN (
    SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
  ) RETURNING token_hash, session_id
), emptied AS (
  DELETE FROM sessions s WHERE s.id IN (SELECT session_id FROM gone)
    AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id AND r.token_hash NOT IN (SELECT token_hash FROM gone))
  RETURNING 1
)
SELECT (SELECT count(*) FROM emptied)::int AS sessions, (SELECT count(*) FROM gone)::int AS "refreshTokens"`

/**
 * Deletes the logins revoked, and the refresh tokens expired, before `before`, batch by batch until a
 * batch comes back short, and says how many rows went. A live login, and its spent tokens (which
 * detect reuse until they expire), are never touched.
 */
export async function purgeSessions (pool: pg.Pool, { before, batchSize }: PurgeOptions): Promise<Purged> {
  const purged: Purged = { sessions: 0, refreshTokens: 0 }
  for (const statement of [REVOKED, EXPIRED]) {
    for (;;) {
      const { rows: [batch] } = await pool.query<Purged>(statement, [before, batchSize])
      purged.sessions += batch!.sessions
      purged.refreshTokens += batch!.refreshTokens
      const counted = statement === REVOKED ? batch!.sessions : batch!.refreshTokens
      if (counted < batchSize) break
    }
  }
  return purged
}
