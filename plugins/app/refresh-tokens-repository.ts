import type { PostgresDb } from '@fastify/postgres'
import fp from 'fastify-plugin'
import { createHash, randomBytes } from 'node:crypto'
import type { Role } from '../../schemas/user.js'

const digest = (token: string): Buffer => createHash('sha256').update(token).digest()

export interface Spent { familyId: string, userId: string, role: Role, generation: number }

/**
 * Refresh tokens: opaque, random, stored only as a SHA-256 digest, grouped by family (one login).
 * Each is spent at most once; a token issued before the user's current generation is dead.
 */
export function createRefreshTokensRepository (pg: PostgresDb) {
  return {
    async create (userId: string, familyId: string, generation: number, ttlSeconds: number): Promise<string> {
      const token = randomBytes(32).toString('base64url')
      await pg.query(
        `INSERT INTO refresh_tokens (token_hash, family_id, user_id, generation, expires_at)
         VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))`,
        [digest(token), familyId, userId, generation, ttlSeconds])
      return token
    },

    /**
     * Spends a token in one statement, so that of two concurrent refreshes exactly one wins.
     * 'reused' when the token was already spent: the caller then revokes the whole family.
     */
    async spend (token: string): Promise<Spent | 'reused' | undefined> {
      const hash = digest(token)
      const { rows } = await pg.query<{ family_id: string, user_id: string, role: Role, token_generation: number }>(
        `UPDATE refresh_tokens r SET used_at = clock_timestamp()
         FROM users u
         WHERE r.token_hash = $1 AND u.id = r.user_id AND r.used_at IS NULL AND r.revoked_at IS NULL
           AND r.expires_at > clock_timestamp() AND r.generation = u.token_generation
         RETURNING r.family_id, r.user_id, u.role, u.token_generation`, [hash])
      const row = rows[0]
      if (row !== undefined) return { familyId: row.family_id, userId: row.user_id, role: row.role, generation: row.token_generation }
      const spent = await pg.query('SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL', [hash])
      return spent.rowCount === 0 ? undefined : 'reused'
    },

    /** Revokes the family of `token` (only if it is `userId`'s, when given); returns whose family it was. */
    async revokeFamilyOf (token: string, userId?: string): Promise<{ familyId: string, userId: string } | undefined> {
      const { rows } = await pg.query<{ family_id: string, user_id: string }>(
        'SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1 AND ($2::uuid IS NULL OR user_id = $2)',
        [digest(token), userId ?? null])
      const row = rows[0]
      if (row === undefined) return undefined
      await this.revokeFamily(row.family_id)
      return { familyId: row.family_id, userId: row.user_id }
    },

    async revokeFamily (familyId: string): Promise<void> {
      await pg.query('UPDATE refresh_tokens SET revoked_at = clock_timestamp() WHERE family_id = $1 AND revoked_at IS NULL', [familyId])
    }
  }
}

export type RefreshTokensRepository = ReturnType<typeof createRefreshTokensRepository>

export default fp(async function refreshTokensRepository (fastify) {
  fastify.decorate('refreshTokensRepository', createRefreshTokensRepository(fastify.pg))
}, { name: 'refresh-tokens-repository', dependencies: ['postgres'] })

declare module 'fastify' {
  interface FastifyInstance {
    refreshTokensRepository: RefreshTokensRepository
  }
}
