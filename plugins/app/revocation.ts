import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { UsersRepository } from './users-repository.js'

export interface AccessClaims {
  sub: string
  jti: string
  /** The login (refresh-token family) the token belongs to. */
  sid: string
  /** The user's token generation when the token was issued. */
  gen: number
  role: 'user' | 'admin'
  iat: number
  exp: number
}

const DELETED = 'deleted'

/**
 * The deny-list and the per-user cut-off, in Redis. Keys share the user's hash tag `{sub}`, so one
 * MGET answers "is this token, its login or its generation revoked?" in a single round trip, also
 * on Redis Cluster. PostgreSQL holds the truth of the generation; Redis caches it for as long as an
 * access token lives, and refills it (SET NX, so a concurrent cut-off is never overwritten) when absent.
 */
export function createRevocation (redis: Redis, usersRepository: UsersRepository, accessTokenTtl: number) {
  // Long enough to outlive every token that the entry could reject, clock tolerance included.
  const ttl = accessTokenTtl + 10
  const keys = {
    token: (sub: string, jti: string) => `deny:{${sub}}:jti:${jti}`,
    session: (sub: string, sid: string) => `deny:{${sub}}:sid:${sid}`,
    generation: (sub: string) => `gen:{${sub}}`
  }

  // Concurrent requests of one user whose generation is not cached share one PostgreSQL read.
  const filling = new Map<string, Promise<string>>()
  async function fill (sub: string): Promise<string> {
    let pending = filling.get(sub)
    if (pending === undefined) {
      pending = (async () => {
        const current = await usersRepository.generation(sub)
        const generation = current === undefined ? DELETED : String(current)
        await redis.set(keys.generation(sub), generation, 'EX', ttl, 'NX')
        return generation
      })().finally(() => filling.delete(sub))
      filling.set(sub, pending)
    }
    return await pending
  }

  return {
    /** 'revoked' or 'ok'; throws when Redis (or PostgreSQL, for a refill) cannot answer. */
    async check (claims: AccessClaims): Promise<'ok' | 'revoked'> {
      const [token, session, cached] = await redis.mget(keys.token(claims.sub, claims.jti), keys.session(claims.sub, claims.sid), keys.generation(claims.sub))
      if (token !== null || session !== null) return 'revoked'
      const generation = cached ?? await fill(claims.sub)
      return generation === String(claims.gen) ? 'ok' : 'revoked'
    },

    /** This one token, until the moment it would have expired anyway. */
    async revokeToken (claims: AccessClaims): Promise<void> {
      await redis.set(keys.token(claims.sub, claims.jti), '1', 'EXAT', claims.exp)
    },

    /** Every access token of one login. */
    async revokeSession (sub: string, sid: string): Promise<void> {
      await redis.set(keys.session(sub, sid), '1', 'EX', ttl)
    },

    /** Publishes a new generation (or the user's deletion): every older access token is refused. */
    async cutOff (sub: string, generation: number | 'deleted'): Promise<void> {
      await redis.set(keys.generation(sub), String(generation), 'EX', ttl)
    }
  }
}

export type Revocation = ReturnType<typeof createRevocation>

export default fp(async function revocation (fastify) {
  fastify.decorate('revocation', createRevocation(fastify.redis, fastify.usersRepository, fastify.config.ACCESS_TOKEN_TTL))
}, { name: 'revocation', dependencies: ['redis', 'users-repository'] })

declare module 'fastify' {
  interface FastifyInstance {
    revocation: Revocation
  }
}
