import fp from 'fastify-plugin'
import type { Counters } from '../admission/counters.js'
import { normalizeIP } from '../admission/rate-limit.js'
import type { RedisBreaker } from './redis-breaker.js'
import type { Redis } from 'ioredis'

interface LoginLimits {
  /** Failed attempts per (IP, email) per window. */
  max: number
  windowMs: number
  /** Failed attempts per email per window, from addresses that have not logged in to it lately. */
  accountMax: number
  accountWindowMs: number
}

interface Attempt {
  /** Seconds to wait, when the attempt is refused. */
  retryAfter?: number
  /** Whether this address logged in to this account lately (it then escapes the account's limit). */
  known: boolean
}

// How long an address that logged in to an account stays known to it.
const KNOWN_TTL_SECONDS = 30 * 24 * 3600

/**
 * The brute-force limits of POST /auth/login (and of re-authentication). Two budgets of failed
 * attempts: per (client IP, lowercased email), and per email across every address, so that no number
 * of addresses escapes it. An attempt is counted before the password is checked, so parallel guesses
 * cannot overshoot, and given back when it succeeds, so only failures count. Once a budget is spent,
 * attempts are refused until its window ends, even with the right password.
 *
 * The account's budget is what a botnet spends; it must not lock the owner out: an address that
 * logged in to the account within 30 days is known to it and is charged only its own pair's budget.
 */
function createLoginLimit (counters: Counters, redis: Redis, breaker: RedisBreaker, limits: LoginLimits, onLimited: (limit: 'login' | 'account') => void) {
  const pair = (ip: string, email: string): string => `login:{${normalizeIP(ip)}:${email}}`
  const account = (email: string): string => `login:account:${email}`
  const refuse = (limit: 'login' | 'account', ttl: number, known: boolean): Attempt => {
    onLimited(limit)
    return { retryAfter: Math.max(1, Math.ceil(ttl / 1000)), known }
  }

  return {
    /** Counts an attempt; `retryAfter` is set when the pair or the account is over its limit. */
    async attempt (ip: string, email: string): Promise<Attempt> {
      const key = pair(ip, email)
      const { current, ttl, values } = await counters.incr(key, limits.windowMs, [`${key}:known`])
      const known = values?.[0] === '1'
      if (current > limits.max) return refuse('login', ttl, known)
      if (known) return { known }
      const charged = await counters.incr(account(email), limits.accountWindowMs)
      return charged.current > limits.accountMax ? refuse('account', charged.ttl, known) : { known }
    },

    /** The attempt was not a failure (the password could not be checked): it is given back. */
    async giveBack (ip: string, email: string, { known }: Attempt): Promise<void> {
      await Promise.all([counters.decr(pair(ip, email)), known ? undefined : counters.decr(account(email))])
    },

    /** The attempt was right: it is given back, and the address is known to the account from now on. */
    async succeeded (ip: string, email: string, attempt: Attempt): Promise<void> {
      const key = pair(ip, email)
      await Promise.all([
        this.giveBack(ip, email, attempt),
        breaker.attempt(async () => await redis.set(`${key}:known`, '1', 'EX', KNOWN_TTL_SECONDS), () => null)
      ])
    }
  }
}

type LoginLimit = ReturnType<typeof createLoginLimit>

export default fp(async function loginLimit (fastify) {
  const { LOGIN_RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS, LOGIN_ACCOUNT_MAX, LOGIN_ACCOUNT_WINDOW_MS } = fastify.config
  const limited = (limit: 'login' | 'account'): void => fastify.metrics.rateLimited.inc({ limit })
  const limits = { max: LOGIN_RATE_LIMIT_MAX, windowMs: RATE_LIMIT_WINDOW_MS, accountMax: LOGIN_ACCOUNT_MAX, accountWindowMs: LOGIN_ACCOUNT_WINDOW_MS }
  fastify.decorate('loginLimit', createLoginLimit(fastify.counters, fastify.redis, fastify.redisBreaker, limits, limited))
}, { name: 'login-limit', dependencies: ['counters', 'metrics', 'redis', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    loginLimit: LoginLimit
  }
}
