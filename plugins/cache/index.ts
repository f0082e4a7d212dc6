import { createCache } from 'async-cache-dedupe'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from '../app/redis-breaker.js'
import { createDecoder, dataKey, FencedStorage, generationKey, type Cached } from './fenced-storage.js'

/** What Redis held under a loader's `keys(args)`, read ahead by admission. */
export interface Prefetched { keys: string[], values: Array<string | null> }

/** A cached loader: `load(args)`, or `load(args, prefetched)` to skip the read that admission made. */
interface Loader<A, T> {
  (args: A, prefetched?: Prefetched): Promise<Cached<T>>
  /** The Redis keys that a read of `args` looks at: the entry and its fence's generation. */
  keys: (args: A) => string[]
}

interface CacheStats { hits: number, misses: number, dedupes: number }

/**
 * `cache`: read-through caching of loaders, with single-flight of concurrent misses (async-cache-dedupe),
 * TTL with jitter, and invalidation by fence that every instance sees at once.
 */
function createCacheDecorator (redis: Redis, breaker: RedisBreaker, log: FastifyBaseLogger, ttlSeconds: number) {
  FencedStorage.define(redis)
  const generationTtl = ttlSeconds * 2 + 60
  const current = createDecoder()
  const storage = new FencedStorage(redis, breaker, generationTtl, current)
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
    define<A, T> (name: string, options: { fence: (args: A) => string, key: (args: A) => string }, load: (args: A) => Promise<T>): Loader<A, T> {
      const serialize = (args: A): string => `${options.fence(args)}#${options.key(args)}`
      cache.define(name, { serialize }, async (args: A) => ({ value: await load(args), hit: false }))
      const call = (cache as unknown as Record<string, (args: A) => Promise<Cached<T>>>)[name]!
      // async-cache-dedupe's name for an entry, which the storage receives.
      const storageKey = (args: A): string => `${name}~${serialize(args)}`
      const keys = (args: A): string[] => {
        const fence = options.fence(args)
        return [dataKey(fence, storageKey(args)), generationKey(fence)]
      }
      // A prefetched entry that is current is a hit without a round trip. A prefetched miss goes
      // through async-cache-dedupe (which joins loads in flight) without reading Redis again: its
      // generation fences the write. Keys read for other arguments are ignored.
      return Object.assign(async (args: A, prefetched?: Prefetched): Promise<Cached<T>> => {
        const [entryKey] = keys(args)
        if (prefetched === undefined || prefetched.keys[0] !== entryKey) return await call(args)
        const entry = current(prefetched.values[0], prefetched.values[1])
        if (entry !== undefined) {
          stats.hits++
          return { value: entry.value as T, hit: true }
        }
        const missed = storageKey(args)
        storage.knownMiss(missed, prefetched.values[1])
        // async-cache-dedupe asks the storage at once, in this tick, unless the call joins a load in flight.
        const loading = call(args)
        storage.forget(missed)
        return await loading
      }, { keys })
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
