import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from './redis-breaker.js'

export interface Count { current: number, ttl: number }

// One atomic round trip: count, and start the window on the first hit. Every key gets a TTL.
const INCR = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}`

const READ = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
return {current, math.max(ttl, 0)}`

// Never creates a key (so never one without a TTL), never goes below zero.
const DECR = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > 0 then redis.call('DECR', KEYS[1]) end
return current`

declare module 'ioredis' {
  // The augmented interface is generic; its parameter must be declared, though these commands ignore it.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    pwIncr: (key: string, windowMs: number) => Promise<[number, number]>
    pwRead: (key: string) => Promise<[number, number]>
    pwDecr: (key: string) => Promise<number>
  }
}

/** Per-instance windows, used only while Redis is away; expired entries are swept once a second. */
class MemoryCounters {
  private readonly entries = new Map<string, { current: number, resetAt: number }>()
  private readonly sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, entry] of this.entries) if (entry.resetAt <= now) this.entries.delete(key)
  }, 1000).unref()

  incr (key: string, windowMs: number): Count {
    const now = Date.now()
    let entry = this.entries.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      entry = { current: 0, resetAt: now + windowMs }
      this.entries.set(key, entry)
    }
    entry.current++
    return { current: entry.current, ttl: entry.resetAt - now }
  }

  read (key: string): Count {
    const entry = this.entries.get(key)
    const ttl = entry === undefined ? 0 : entry.resetAt - Date.now()
    return ttl > 0 && entry !== undefined ? { current: entry.current, ttl } : { current: 0, ttl: 0 }
  }

  decr (key: string): void {
    const entry = this.entries.get(key)
    if (entry !== undefined && entry.current > 0) entry.current--
  }

  close (): void {
    clearInterval(this.sweeper)
  }
}

/**
 * Windowed counters for rate limits: in Redis, exact across every replica; while the breaker says
 * Redis is away, in this instance's memory with the same numbers, and back to Redis by itself.
 */
export function createCounters (redis: Redis, breaker: RedisBreaker) {
  redis.defineCommand('pwIncr', { numberOfKeys: 1, lua: INCR })
  redis.defineCommand('pwRead', { numberOfKeys: 1, lua: READ })
  redis.defineCommand('pwDecr', { numberOfKeys: 1, lua: DECR })
  const memory = new MemoryCounters()

  async function either<T> (shared: () => Promise<T>, local: () => T): Promise<T> {
    if (breaker.open) return local()
    try {
      return await shared()
    } catch (err) {
      breaker.trip(err)
      return local()
    }
  }

  return {
    async incr (key: string, windowMs: number): Promise<Count> {
      return await either(async () => {
        const [current, ttl] = await redis.pwIncr(key, windowMs)
        return { current, ttl }
      }, () => memory.incr(key, windowMs))
    },
    async read (key: string): Promise<Count> {
      return await either(async () => {
        const [current, ttl] = await redis.pwRead(key)
        return { current, ttl }
      }, () => memory.read(key))
    },
    async decr (key: string): Promise<void> {
      await either(async () => { await redis.pwDecr(key) }, () => memory.decr(key))
    },
    close: () => memory.close()
  }
}

export type Counters = ReturnType<typeof createCounters>

export default fp(async function counters (fastify) {
  const counters = createCounters(fastify.redis, fastify.redisBreaker)
  fastify.decorate('counters', counters)
  fastify.addHook('onClose', async () => counters.close())
}, { name: 'counters', dependencies: ['redis', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    counters: Counters
  }
}
