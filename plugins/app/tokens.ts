import type { JWT } from '@fastify/jwt'
import type { PostgresDb } from '@fastify/postgres'
import type { Static } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { TokenPair as TokenPairSchema } from '../../schemas/auth.js'
import type { Role } from '../../schemas/user.js'
import type { SessionsRepository, Spent } from './sessions-repository.js'

type TokenPair = Static<typeof TokenPairSchema>

interface Grant { id: string, role: Role, generation: number }

/** Issues the tokens of a session: an access token (JWT) and a refresh token that rotates. */
function createTokens (jwt: JWT, pg: PostgresDb, sessions: SessionsRepository, ttl: { access: number, refresh: number }) {
  const access = (user: Grant, sessionId: string): string =>
    jwt.sign({ sub: user.id, jti: randomUUID(), sid: sessionId, gen: user.generation, role: user.role })
  const pair = (accessToken: string, refreshToken: string): TokenPair => ({ accessToken, refreshToken, tokenType: 'Bearer', expiresIn: ttl.access })

  return {
    /** A new session (a login). */
    async issue (user: Grant): Promise<TokenPair> {
      const sessionId = randomUUID()
      return pair(access(user, sessionId), await sessions.start(user.id, sessionId, user.generation, ttl.refresh))
    },

    /**
     * Spends a refresh token for the next pair of its session, in one transaction that holds the
     * session's lock. The access token is signed before the commit, so a logout that waited for
     * the lock writes its deny-list entry after the token's `iat`: the entry outlives the token.
     * `reused`: a spent token came back, and its session is now revoked (the caller tells Redis).
     */
    async refresh (refreshToken: string): Promise<TokenPair | { reused: Spent } | undefined> {
      return await pg.transact(async client => {
        const spent = await sessions.spend(client, refreshToken)
        if (spent === undefined || 'reused' in spent) return spent
        const accessToken = access({ id: spent.userId, role: spent.role, generation: spent.generation }, spent.sessionId)
        return pair(accessToken, await sessions.rotate(client, spent.sessionId, spent.generation, ttl.refresh))
      })
    }
  }
}

export default fp(async function tokens (fastify) {
  const { ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL } = fastify.config
  fastify.decorate('tokens', createTokens(fastify.jwt, fastify.pg, fastify.sessionsRepository, { access: ACCESS_TOKEN_TTL, refresh: REFRESH_TOKEN_TTL }))
}, { name: 'tokens', dependencies: ['jwt', 'postgres', 'repositories'] })

declare module 'fastify' {
  interface FastifyInstance {
    tokens: ReturnType<typeof createTokens>
  }
}
