import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RedisBreaker } from '../app/redis-breaker.js'

export interface Count { current: number, ttl: number }

/** A count, with the values of the keys read along with it: undefined when Redis was skipped. */
export interface CountAndReads extends Count { values?: Array<string | null> }

/** Several counts taken at once (in the order of their keys), with the values read along with them. */
export interface CountsAndReads { counts: Count[], values?: Array<string | null> }

// One atomic round trip: count each of the first ARGV[1] keys, starting its window (ARGV[1 + i]) on
// the first hit, so every key gets a TTL; then the values of the other keys, so that a caller's reads
// ride on the same round trip.
const INCR = `
local n = tonumber(ARGV[1])
local result = {}
for i = 1, n do
  local current = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[i + 1])
    ttl = tonumber(ARGV[i + 1])
  end
  result[2 * i - 1] = current
  result[2 * i] = ttl
end
if #KEYS == n then return result end
local values = redis.call('MGET', unpack(KEYS, n + 1))
for i = 1, #KEYS - n do result[2 * n + i] = values[i] end
return result`

// Never creates a key (so never one without a TTL), never goes below zero.
const DECR = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > 0 then redis.call('DECR', KEYS[1]) end
return current`

declare module 'ioredis' {
  // The augmented interface is generic; its parameter must be declared, though these commands ignore it.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    /** numberOfKeys, the counters' keys, the keys to read, how many counters, each one's window in ms. */
    pwIncr: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<Array<number | string | null>>
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

  /**
   * Counts one hit in each window, and reads `reads` in the same round trip (in a Cluster they must
   * all share one hash slot). While Redis is skipped, counts in memory and reads nothing.
   */
  function incrAll (windows: Array<{ key: string, windowMs: number }>, reads: string[] = []): Promise<CountsAndReads> {
    const n = windows.length
    return breaker.attempt(
      () => redis.pwIncr(n + reads.length, ...windows.map(w => w.key), ...reads, n, ...windows.map(w => w.windowMs)).then(result => ({
        counts: windows.map((_, i) => ({ current: result[2 * i] as number, ttl: result[2 * i + 1] as number })),
        values: result.slice(2 * n) as Array<string | null>
      })),
      () => ({ counts: windows.map(({ key, windowMs }) => memory.incr(key, windowMs)) }))
  }

  return {
    incrAll,
    /** One window of `incrAll`. */
    async incr (key: string, windowMs: number, reads: string[] = []): Promise<CountAndReads> {
      const { counts: [count], values } = await incrAll([{ key, windowMs }], reads)
      return { ...count!, values }
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
