import fp from 'fastify-plugin'
import type { ChainableCommander, Redis } from 'ioredis'
import type { AccessClaims } from '../../schemas/auth.js'
import { errors } from '../app/errors.js'
import type { RedisBreaker } from '../app/redis-breaker.js'
import type { UsersRepository } from '../app/users-repository.js'

const DELETED = 'deleted'

// A user's cut-off only ever rises: two logout-alls whose writes reach Redis out of order, or a refill
// read before a cut-off, never leave the older generation behind. 'deleted' is final.
const RAISE = `
local current = redis.call('GET', KEYS[1])
if current == 'deleted' or (current and ARGV[1] ~= 'deleted' and tonumber(current) >= tonumber(ARGV[1])) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`

declare module 'ioredis' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    pwRaise: (key: string, generation: string, ttlSeconds: number) => Promise<number>
  }
}

interface Durability { replicas: number, timeoutMs: number }

/** What Redis holds under a token's revocation keys, in their order. */
export type RevocationRead = Array<string | null>

/**
 * A revocation must not be acknowledged and then lost. With `replicas` > 0 each write is followed,
 * in the same round trip, by WAIT: it counts as stored only once that many replicas have it, so a
 * failover to one of them keeps it. Any failure is a 503, which promises nothing: the entry may or
 * may not be stored (a retried logout then answers 401, the token being revoked after all).
 */
async function durably (redis: Redis, durability: Durability, write: (batch: ChainableCommander) => void): Promise<void> {
  const batch = redis.pipeline()
  write(batch)
  if (durability.replicas > 0) batch.wait(durability.replicas, durability.timeoutMs)
  const results = await batch.exec().catch((err: unknown) => [[err, null]] as Array<[unknown, unknown]>)
  const failed = (results ?? [[new Error('no reply'), null]]).some(([err]) => err !== null)
  const acknowledged = durability.replicas === 0 || Number(results?.at(-1)?.[1]) >= durability.replicas
  if (failed || !acknowledged) throw errors.revocationNotStored()
}

/**
 * The deny-list and the per-user cut-off, in Redis. Keys share the user's hash tag `{sub}`, so one
 * read answers "is this token, its login or its generation revoked?", also on Redis Cluster.
 * PostgreSQL holds the truth of the generation; Redis caches it for as long as an access token
 * lives, and refills it when absent (only ever raising it, so a concurrent cut-off is never undone).
 */
export function createRevocation (redis: Redis, breaker: RedisBreaker, usersRepository: UsersRepository, accessTokenTtl: number, durability: Durability = { replicas: 0, timeoutMs: 0 }) {
  redis.defineCommand('pwRaise', { numberOfKeys: 1, lua: RAISE })
  // Long enough to outlive every token that the entry could reject, clock tolerance included.
  const ttl = accessTokenTtl + 10
  const keys = {
    token: (sub: string, jti: string) => `deny:{${sub}}:jti:${jti}`,
    session: (sub: string, sid: string) => `deny:{${sub}}:sid:${sid}`,
    generation: (sub: string) => `gen:{${sub}}`
  }

  // Cut-offs that Redis could not take. When it is back their cached generation is dropped, not
  // written: the next request refills it from PostgreSQL, so a late replay never lowers a newer one.
  const pending = new Set<string>()
  redis.on('ready', () => {
    for (const sub of pending) {
      durably(redis, durability, batch => batch.unlink(keys.generation(sub))).then(() => pending.delete(sub), () => {})
    }
  })

  // Concurrent requests of one user whose generation is not cached share one PostgreSQL read.
  const filling = new Map<string, Promise<string>>()
  async function fill (sub: string): Promise<string> {
    let pending = filling.get(sub)
    if (pending === undefined) {
      pending = (async () => {
        const current = await usersRepository.generation(sub)
        const generation = current === undefined ? DELETED : String(current)
        await redis.pwRaise(keys.generation(sub), generation, ttl)
        return generation
      })().finally(() => filling.delete(sub))
      filling.set(sub, pending)
    }
    return await pending
  }

  const keysOf = (claims: AccessClaims): string[] => [keys.token(claims.sub, claims.jti), keys.session(claims.sub, claims.sid), keys.generation(claims.sub)]

  /**
   * The verdict on what Redis holds under `keysOf(claims)`. A cached generation below the token's
   * means Redis is behind PostgreSQL (a cut-off on its way, or lost), which then decides.
   */
  async function judge (claims: AccessClaims, [token, session, cached]: RevocationRead): Promise<'ok' | 'revoked'> {
    if (token != null || session != null) return 'revoked'
    const behind = cached == null || (cached !== DELETED && Number(cached) < claims.gen)
    const generation = behind ? await fill(claims.sub) : cached
    return generation === String(claims.gen) ? 'ok' : 'revoked'
  }

  return {
    /** The keys that say whether a token is revoked: admission reads them, `judge` gives the verdict. */
    keys: keysOf,
    judge,

    /** 'revoked' or 'ok' when admission read nothing; throws when Redis (or PostgreSQL, for a refill) cannot answer. */
    async check (claims: AccessClaims): Promise<'ok' | 'revoked'> {
      // While the breaker is open, do not pay another timeout: REVOCATION_FAIL_MODE decides at once.
      const values = await breaker.attempt(async () => await redis.mget(...keysOf(claims)), () => undefined)
      if (values === undefined) throw new Error('Redis is unavailable')
      return await judge(claims, values)
    },

    /** This token (until the moment it would have expired anyway) and every other of its login. */
    async revokeLogin (claims: AccessClaims): Promise<void> {
      await durably(redis, durability, batch => batch
        .set(keys.token(claims.sub, claims.jti), '1', 'EXAT', claims.exp)
        .set(keys.session(claims.sub, claims.sid), '1', 'EX', ttl))
    },

    /** Every access token of one login. */
    async revokeSession (sub: string, sid: string): Promise<void> {
      await durably(redis, durability, batch => batch.set(keys.session(sub, sid), '1', 'EX', ttl))
    },

    /**
     * Publishes a new generation (or the user's deletion): every older access token is refused.
     * PostgreSQL already holds it; if Redis cannot take it now, it is published again when Redis is back.
     */
    async cutOff (sub: string, generation: number | 'deleted'): Promise<void> {
      try {
        await durably(redis, durability, batch => batch.pwRaise(keys.generation(sub), String(generation), ttl))
        pending.delete(sub)
      } catch (err) {
        pending.add(sub)
        throw err
      }
    }
  }
}

type Revocation = ReturnType<typeof createRevocation>

export default fp(async function revocation (fastify) {
  const { ACCESS_TOKEN_TTL, REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS } = fastify.config
  fastify.decorate('revocation', createRevocation(fastify.redis, fastify.redisBreaker, fastify.usersRepository, ACCESS_TOKEN_TTL, { replicas: REDIS_WAIT_REPLICAS, timeoutMs: REDIS_WAIT_TIMEOUT_MS }))
}, { name: 'revocation', dependencies: ['redis', 'redis-breaker', 'repositories'] })

declare module 'fastify' {
  interface FastifyInstance {
    revocation: Revocation
  }
}
