import { createCache } from 'async-cache-dedupe'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from './redis-breaker.js'

export interface Cached<T> { value: T, hit: boolean }

export interface CacheStats { hits: number, misses: number, dedupes: number }

// Bumps a fence's generation; the key expires well after any value written under it.
const BUMP = `
local generation = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return generation`

declare module 'ioredis' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    pwBump: (key: string, ttlSeconds: number) => Promise<number>
  }
}

const dataKey = (fence: string, storageKey: string): string => `cache:{${fence}}:${storageKey}`
const generationKey = (fence: string): string => `cache:{${fence}}:gen`
// async-cache-dedupe names an entry `${name}~${serialized args}`; we serialize args as `${fence}#${key}`.
const fenceOf = (storageKey: string): string => storageKey.slice(storageKey.indexOf('~') + 1, storageKey.indexOf('#'))

/**
 * The storage behind async-cache-dedupe, with a generation fence. Every value is stored with the
 * generation its fence had when the read began; invalidating a fence bumps the generation, so a value
 * loaded before a write can never be served after it, even if its slow read writes it back late. The
 * value and its fence's generation share a hash tag and come back in one MGET. When Redis is away
 * (the breaker is open, or a command fails) reads miss and writes are skipped: callers load from
 * PostgreSQL, and caching resumes by itself.
 */
class FencedStorage {
  private readonly observed = new Map<string, string>()

  constructor (private readonly redis: Redis, private readonly breaker: RedisBreaker, private readonly generationTtl: number) {}

  async get (storageKey: string): Promise<Cached<unknown> | undefined> {
    if (this.breaker.open) return undefined
    const fence = fenceOf(storageKey)
    try {
      const [raw, generation] = await this.redis.mget(dataKey(fence, storageKey), generationKey(fence))
      const current = generation ?? '0'
      this.observed.set(storageKey, current)
      if (typeof raw !== 'string') return undefined
      const stored = JSON.parse(raw) as { g: string, v: unknown }
      return stored.g === current ? { value: stored.v, hit: true } : undefined
    } catch (err) {
      this.breaker.trip(err)
      return undefined
    }
  }

  async set (storageKey: string, result: Cached<unknown>, ttl: number): Promise<void> {
    const generation = this.observed.get(storageKey)
    this.observed.delete(storageKey)
    // No generation observed means Redis was away when the read began: no fence, so no write.
    if (generation === undefined || this.breaker.open) return
    try {
      await this.redis.set(dataKey(fenceOf(storageKey), storageKey), JSON.stringify({ g: generation, v: result.value ?? null }), 'EX', ttl)
    } catch (err) {
      this.breaker.trip(err)
    }
  }

  async remove (storageKey: string): Promise<void> {
    this.observed.delete(storageKey)
    if (this.breaker.open) return
    await this.redis.unlink(dataKey(fenceOf(storageKey), storageKey)).catch((err: unknown) => this.breaker.trip(err))
  }

  async bump (fence: string): Promise<void> {
    await this.redis.pwBump(generationKey(fence), this.generationTtl)
  }

  async getTTL (storageKey: string): Promise<number> {
    return await this.redis.ttl(dataKey(fenceOf(storageKey), storageKey))
  }

  async exists (storageKey: string): Promise<boolean> {
    return await this.redis.exists(dataKey(fenceOf(storageKey), storageKey)) === 1
  }

  // Wildcard invalidation and clear() would need KEYS or SCAN: fences replace them.
  async invalidate (): Promise<void> {
    throw new Error('invalidate by fence with cache.invalidate()')
  }

  async clear (): Promise<void> {
    throw new Error('clear() is not supported: invalidate by fence')
  }
}

/**
 * `cache`: read-through caching of loaders, with single-flight of concurrent misses (async-cache-dedupe),
 * TTL with jitter, and invalidation by fence that every instance sees at once.
 */
export function createCacheDecorator (redis: Redis, breaker: RedisBreaker, log: FastifyBaseLogger, ttlSeconds: number) {
  redis.defineCommand('pwBump', { numberOfKeys: 1, lua: BUMP })
  const generationTtl = ttlSeconds * 2 + 60
  const storage = new FencedStorage(redis, breaker, generationTtl)
  const stats: CacheStats = { hits: 0, misses: 0, dedupes: 0 }
  const cache = createCache({
    // Jitter spreads the expiry of entries written together, so they do not all reload at once.
    ttl: () => ttlSeconds + Math.floor(Math.random() * Math.max(1, ttlSeconds / 10)),
    storage: { type: 'custom', options: { storage: storage as never } },
    onHit: () => { stats.hits++ },
    onMiss: () => { stats.misses++ },
    onDedupe: () => { stats.dedupes++ },
    onError: (err: unknown) => log.warn({ err }, 'cache error')
  })
  // Fences whose bump failed while Redis was away: bumped as soon as it is back.
  const pending = new Set<string>()
  const flush = async (): Promise<void> => {
    for (const fence of pending) {
      await storage.bump(fence)
      pending.delete(fence)
    }
  }
  redis.on('ready', () => { flush().catch((err: unknown) => log.warn({ err }, 'cache invalidation replay failed')) })

  return {
    stats,
    /**
     * A cached loader. `fence(args)` names what invalidates the entry; `key(args)` tells entries apart.
     * The answer says whether it came from the cache (a caller that joined a load in flight gets a miss).
     */
    define<A, T> (name: string, options: { fence: (args: A) => string, key: (args: A) => string }, load: (args: A) => Promise<T>): (args: A) => Promise<Cached<T>> {
      cache.define(name, { serialize: (args: A) => `${options.fence(args)}#${options.key(args)}` }, async (args: A) => ({ value: await load(args), hit: false }))
      const call = (cache as unknown as Record<string, (args: A) => Promise<Cached<T>>>)[name]!
      return async (args: A) => await call(args)
    },
    /** Every value under these fences is stale from now on, on every instance. */
    async invalidate (...fences: string[]): Promise<void> {
      await Promise.all(fences.map(async fence => {
        try {
          await storage.bump(fence)
        } catch (err) {
          pending.add(fence)
          breaker.trip(err)
          log.error({ err, fence }, 'cache invalidation deferred until Redis returns')
        }
      }))
    }
  }
}

export type Cache = ReturnType<typeof createCacheDecorator>

export default fp(async function cache (fastify) {
  fastify.decorate('cache', createCacheDecorator(fastify.redis, fastify.redisBreaker, fastify.log, fastify.config.CACHE_TTL))
}, { name: 'cache', dependencies: ['redis', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache
  }
}
