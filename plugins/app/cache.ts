import { createCache } from 'async-cache-dedupe'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from './redis-breaker.js'

export interface Cached<T> { value: T, hit: boolean }

/** What Redis held under a loader's `keys(args)`, read ahead (by the rate limit's round trip). */
export interface Prefetched { keys: string[], values: Array<string | null> }

/** A cached loader: `load(args)`, or `load(args, prefetched)` to skip the read when it was made already. */
export interface Loader<A, T> {
  (args: A, prefetched?: Prefetched): Promise<Cached<T>>
  /** The Redis keys that a read of `args` looks at: the entry and its fence's generation. */
  keys: (args: A) => string[]
}

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

interface Stored { g: string, v: unknown }

// Entries whose parsed form is kept, by their text: a hot entry comes back from Redis as the same text
// on every read, and parsing it again was a tenth of a cache hit's CPU. Equal text, equal value. The
// texts kept add up to a million characters at most (a user is about 250, a page of 100 about 25,000).
const PARSED_MAX_CHARS = 1_000_000

// A parsed entry is shared by every request that reads the same text, so it is frozen: a caller that
// changed it would change what the next one is served (in strict mode such a write throws instead).
function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/** `current(raw, generation)`: the value of an entry read with its fence's generation, if it is still current. */
function createDecoder () {
  const parsed = new Map<string, Stored>()
  let chars = 0
  return function current (raw: string | null | undefined, generation: string | null | undefined): { value: unknown } | undefined {
    if (typeof raw !== 'string') return undefined
    let stored = parsed.get(raw)
    if (stored === undefined) {
      try {
        stored = deepFreeze(JSON.parse(raw) as Stored)
      } catch {
        return undefined
      }
      // The oldest texts make room (a Map iterates in insertion order).
      for (const old of parsed.keys()) {
        if (chars + raw.length <= PARSED_MAX_CHARS) break
        parsed.delete(old)
        chars -= old.length
      }
      if (raw.length <= PARSED_MAX_CHARS) {
        parsed.set(raw, stored)
        chars += raw.length
      }
    }
    return stored.g === (generation ?? '0') ? { value: stored.v } : undefined
  }
}

type Decoder = ReturnType<typeof createDecoder>

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

  constructor (private readonly redis: Redis, private readonly breaker: RedisBreaker, private readonly generationTtl: number, private readonly current: Decoder) {}

  async get (storageKey: string): Promise<Cached<unknown> | undefined> {
    if (this.breaker.open) return undefined
    const fence = fenceOf(storageKey)
    try {
      const [raw, generation] = await this.redis.mget(dataKey(fence, storageKey), generationKey(fence))
      const entry = this.current(raw, generation)
      if (entry !== undefined) return { value: entry.value, hit: true }
      // A miss: the load that follows writes its value with the generation seen now.
      this.observed.set(storageKey, generation ?? '0')
      return undefined
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
      const keys = (args: A): string[] => {
        const fence = options.fence(args)
        return [dataKey(fence, `${name}~${serialize(args)}`), generationKey(fence)]
      }
      // A prefetched entry that is current is a hit without a round trip; anything else (a miss, a
      // stale entry, or keys read for other arguments) takes the usual way through async-cache-dedupe.
      return Object.assign(async (args: A, prefetched?: Prefetched): Promise<Cached<T>> => {
        if (prefetched !== undefined && prefetched.keys[0] === keys(args)[0]) {
          const entry = current(prefetched.values[0], prefetched.values[1])
          if (entry !== undefined) {
            stats.hits++
            return { value: entry.value as T, hit: true }
          }
        }
        return await call(args)
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
