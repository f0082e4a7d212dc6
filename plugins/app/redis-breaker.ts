import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

const COOLDOWN_MS = 2000

/**
 * Tells whether Redis is worth asking. Open (skip Redis) while the client is not connected, which
 * ioredis knows without a round trip, and for a short cool-down after a command failed or timed out
 * (a hung server still looks connected). So a Redis outage costs one timeout, not one per request.
 */
export function createRedisBreaker (redis: Redis, log: FastifyBaseLogger) {
  let trippedUntil = 0
  let wasOpen = false
  let switches = 0

  const observe = (open: boolean): boolean => {
    if (open !== wasOpen) {
      wasOpen = open
      switches++
      if (open) log.warn('redis unavailable: falling back to per-instance state')
      else log.info('redis available again: back to shared state')
    }
    return open
  }

  // The cool-down is for a server that looks connected but does not answer. A connection that has
  // just come ready has answered: without this, a logout written after Redis came back could be
  // acknowledged while this instance still skipped the deny-list for the rest of the cool-down.
  redis.on('ready', () => { trippedUntil = 0 })

  const isOpen = (): boolean => observe(redis.status !== 'ready' || Date.now() < trippedUntil)
  const trip = (err: unknown): void => {
    log.debug({ err }, 'redis command failed')
    trippedUntil = Date.now() + COOLDOWN_MS
    observe(true)
  }

  return {
    get open (): boolean {
      return isOpen()
    },
    /** Called with a failed command's error: skip Redis for the cool-down. */
    trip,
    /**
     * `shared()` when Redis is worth asking, else `local()`, which also stands in when `shared()`
     * fails (and trips the breaker). A promise chain, not an async function: this runs on every
     * request, and each async layer is another promise to allocate and settle.
     */
    attempt<T> (shared: () => Promise<T>, local: () => T): Promise<T> {
      if (isOpen()) return Promise.resolve(local())
      return shared().catch((err: unknown) => {
        trip(err)
        return local()
      })
    },
    /** How many times the breaker has switched, either way (for metrics). */
    get switches (): number {
      return switches
    }
  }
}

export type RedisBreaker = ReturnType<typeof createRedisBreaker>

export default fp(async function redisBreaker (fastify) {
  fastify.decorate('redisBreaker', createRedisBreaker(fastify.redis, fastify.log))
}, { name: 'redis-breaker', dependencies: ['redis'] })

declare module 'fastify' {
  interface FastifyInstance {
    redisBreaker: RedisBreaker
  }
}
