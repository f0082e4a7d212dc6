import type { PostgresDb } from '@fastify/postgres'
import { createHash, randomBytes } from 'node:crypto'
import type { Role } from '../../schemas/user.js'

const digest = (token: string): Buffer => createHash('sha256').update(token).digest()

type Queryable = Pick<PostgresDb, 'query'>

/** The user a refresh token was issued to, as PostgreSQL has it now. */
export interface Spent { sessionId: string, userId: string, role: Role, generation: number }

/**
 * Sessions (one per login) and their refresh tokens: opaque, random, stored only as a SHA-256
 * digest. A token is spent at most once; a token of an older generation, or of a revoked session, is dead.
 *
 * Every write to a session holds its row lock (`spend` in its caller's transaction, `revoke` in its
 * UPDATE), so a refresh and a logout of one login are serial: the refresh either committed before the
 * revocation, or sees it. Locks are taken user first, then session, the order of a user's deletion.
 */
export function createSessionsRepository (pg: PostgresDb) {
  return {
    /** A new session with its first refresh token, in one statement. */
    async start (userId: string, sessionId: string, generation: number, ttlSeconds: number): Promise<string> {
      const token = randomBytes(32).toString('base64url')
      await pg.query(
        `WITH session AS (INSERT INTO sessions (id, user_id) VALUES ($2, $3) RETURNING id)
         INSERT INTO refresh_tokens (token_hash, session_id, generation, expires_at)
         SELECT $1, id, $4, clock_timestamp() + make_interval(secs => $5) FROM session`,
        [digest(token), sessionId, userId, generation, ttlSeconds])
      return token
    },

    /** The session's next refresh token; `db` is the transaction that spent the previous one. */
    async rotate (db: Queryable, sessionId: string, generation: number, ttlSeconds: number): Promise<string> {
      const token = randomBytes(32).toString('base64url')
      await db.query(
        `INSERT INTO refresh_tokens (token_hash, session_id, generation, expires_at)
         VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))`,
        [digest(token), sessionId, generation, ttlSeconds])
      return token
    },

    /**
     * Spends a token inside the caller's transaction, which then holds the session's lock until it
     * ends. 'reused' when the token was spent before: the session is then revoked in the same
     * transaction. Undefined for an unknown, expired, superseded or revoked token.
     */
    async spend (db: Queryable, token: string): Promise<Spent | { reused: Spent } | undefined> {
      const hash = digest(token)
      const owner = await db.query<{ session_id: string, user_id: string, role: Role, token_generation: number }>(
        `SELECT r.session_id, u.id AS user_id, u.role, u.token_generation
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id
         WHERE r.token_hash = $1 FOR KEY SHARE OF u`, [hash])
      const row = owner.rows[0]
      if (row === undefined) return undefined
      const spent: Spent = { sessionId: row.session_id, userId: row.user_id, role: row.role, generation: row.token_generation }
      const session = await db.query<{ revoked: boolean }>('SELECT revoked_at IS NOT NULL AS revoked FROM sessions WHERE id = $1 FOR UPDATE', [spent.sessionId])
      if (session.rows[0]?.revoked !== false) return undefined
      // A statement of its own, after the lock: a statement reads what was committed when it began.
      const state = await db.query<{ used: boolean, live: boolean, generation: number }>(
        'SELECT used_at IS NOT NULL AS used, expires_at > clock_timestamp() AS live, generation FROM refresh_tokens WHERE token_hash = $1', [hash])
      const presented = state.rows[0]
      if (presented === undefined) return undefined
      if (presented.used) {
        await this.revoke(spent.userId, spent.sessionId, db)
        return { reused: spent }
      }
      if (!presented.live || presented.generation !== spent.generation) return undefined
      await db.query('UPDATE refresh_tokens SET used_at = clock_timestamp() WHERE token_hash = $1', [hash])
      return spent
    },

    /** Marks the session revoked (if it is `userId`'s); false when there is no such session. */
    async revoke (userId: string, sessionId: string, db: Queryable = pg): Promise<boolean> {
      const { rowCount } = await db.query(
        'UPDATE sessions SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE id = $1 AND user_id = $2', [sessionId, userId])
      return rowCount === 1
    },

    /** Revokes the session of a refresh token, if it is `userId`'s; returns that session's id. */
    async revokeByToken (userId: string, token: string): Promise<string | undefined> {
      const { rows } = await pg.query<{ id: string }>(
        `UPDATE sessions s SET revoked_at = coalesce(s.revoked_at, clock_timestamp())
         FROM refresh_tokens r WHERE r.token_hash = $1 AND s.id = r.session_id AND s.user_id = $2
         RETURNING s.id`, [digest(token), userId])
      return rows[0]?.id
    }
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>
