import type { Redis } from 'ioredis'
import type { RedisBreaker } from '../app/redis-breaker.js'

export interface Cached<T> { value: T, hit: boolean }

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

export const dataKey = (fence: string, storageKey: string): string => `cache:{${fence}}:${storageKey}`
export const generationKey = (fence: string): string => `cache:{${fence}}:gen`
// async-cache-dedupe names an entry `${name}~${serialized args}`; we serialize args as `${fence}#${key}`.
const fenceOf = (storageKey: string): string => storageKey.slice(storageKey.indexOf('~') + 1, storageKey.indexOf('#'))

interface Stored { g: string, v: unknown }

// Parsed entries are kept by their text (a hot entry comes back as the same text on every read), up
// to a million characters of text in all: a user is about 250, a page of 100 about 25,000.
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
export function createDecoder () {
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
export class FencedStorage {
  // The generation each miss saw, for the write that follows its load.
  private readonly observed = new Map<string, string>()
  // Misses that admission already read: the next get of that entry answers without Redis.
  private readonly known = new Map<string, string>()

  constructor (private readonly redis: Redis, private readonly breaker: RedisBreaker, private readonly generationTtl: number, private readonly current: Decoder) {}

  /** The next `get(storageKey)` is a miss whose fence had `generation`: admission read it already. */
  knownMiss (storageKey: string, generation: string | null | undefined): void {
    this.known.set(storageKey, generation ?? '0')
  }

  /** Forgets a known miss that no get took (the caller joined a load already in flight). */
  forget (storageKey: string): void {
    this.known.delete(storageKey)
  }

  async get (storageKey: string): Promise<Cached<unknown> | undefined> {
    const known = this.known.get(storageKey)
    if (known !== undefined) {
      this.known.delete(storageKey)
      this.observed.set(storageKey, known)
      return undefined
    }
    const fence = fenceOf(storageKey)
    const read = await this.breaker.attempt(async () => await this.redis.mget(dataKey(fence, storageKey), generationKey(fence)), () => undefined)
    if (read === undefined) return undefined
    const [raw, generation] = read
    const entry = this.current(raw, generation)
    if (entry !== undefined) return { value: entry.value, hit: true }
    // A miss: the load that follows writes its value with the generation seen now.
    this.observed.set(storageKey, generation ?? '0')
    return undefined
  }

  async set (storageKey: string, result: Cached<unknown>, ttl: number): Promise<void> {
    const generation = this.observed.get(storageKey)
    this.observed.delete(storageKey)
    // No generation observed means Redis was away when the read began: no fence, so no write.
    if (generation === undefined) return
    const entry = JSON.stringify({ g: generation, v: result.value ?? null })
    await this.breaker.attempt(async () => { await this.redis.set(dataKey(fenceOf(storageKey), storageKey), entry, 'EX', ttl) }, () => {})
  }

  async remove (storageKey: string): Promise<void> {
    this.observed.delete(storageKey)
    await this.breaker.attempt(async () => { await this.redis.unlink(dataKey(fenceOf(storageKey), storageKey)) }, () => {})
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

  static define (redis: Redis): void {
    redis.defineCommand('pwBump', { numberOfKeys: 1, lua: BUMP })
  }
}
