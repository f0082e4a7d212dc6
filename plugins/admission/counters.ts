import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from '../app/redis-breaker.js'

export interface Count { current: number, ttl: number }

/** A count, with the values of the keys read along with it: undefined when Redis was skipped. */
export interface CountAndReads extends Count { values?: Array<string | null> }

// One atomic round trip: count, and start the window on the first hit (every key gets a TTL); then
// the values of the other keys, so that a caller's reads ride on the same round trip.
const INCR = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if #KEYS == 1 then return {current, ttl} end
local values = redis.call('MGET', unpack(KEYS, 2))
table.insert(values, 1, ttl)
table.insert(values, 1, current)
return values`

// Never creates a key (so never one without a TTL), never goes below zero.
const DECR = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > 0 then redis.call('DECR', KEYS[1]) end
return current`

declare module 'ioredis' {
  // The augmented interface is generic; its parameter must be declared, though these commands ignore it.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    /** numberOfKeys, the counter's key, the keys to read, the window in ms. */
    pwIncr: (numberOfKeys: number, ...keysThenWindowMs: Array<string | number>) => Promise<[number, number, ...Array<string | null>]>
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
function createCounters (redis: Redis, breaker: RedisBreaker) {
  redis.defineCommand('pwIncr', { lua: INCR })
  redis.defineCommand('pwDecr', { numberOfKeys: 1, lua: DECR })
  const memory = new MemoryCounters()

  return {
    /**
     * Counts one hit in the window of `key`, and reads `reads` in the same round trip (in a Cluster
     * they must share the counter's hash slot). While Redis is skipped, counts in memory and reads nothing.
     */
    incr (key: string, windowMs: number, reads: string[] = []): Promise<CountAndReads> {
      return breaker.attempt(
        () => redis.pwIncr(1 + reads.length, key, ...reads, windowMs).then(([current, ttl, ...values]) => ({ current, ttl, values })),
        () => memory.incr(key, windowMs))
    },
    async decr (key: string): Promise<void> {
      await breaker.attempt(async () => { await redis.pwDecr(key) }, () => memory.decr(key))
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
