import fp from 'fastify-plugin'
import type { Counters } from './counters.js'
import { normalizeIP } from './rate-limit.js'

/**
 * The brute-force limit of POST /auth/login: LOGIN_RATE_LIMIT_MAX failed attempts per (client IP,
 * lowercased email) per window. An attempt is counted before the password is checked, so parallel
 * guesses cannot overshoot, and given back when it succeeds, so only failures count. Once the limit
 * is reached the pair is refused until the window ends, even with the right password.
 */
export function createLoginLimit (counters: Counters, max: number, windowMs: number, onLimited: () => void) {
  const key = (ip: string, email: string): string => `login:${normalizeIP(ip)}:${email}`
  return {
    /** Counts an attempt; `retryAfter` (seconds) is set when the pair is over its limit. */
    async attempt (ip: string, email: string): Promise<{ retryAfter?: number }> {
      const { current, ttl } = await counters.incr(key(ip, email), windowMs)
      if (current <= max) return {}
      onLimited()
      return { retryAfter: Math.ceil(ttl / 1000) }
    },
    async succeeded (ip: string, email: string): Promise<void> {
      await counters.decr(key(ip, email))
    }
  }
}

export default fp(async function loginLimit (fastify) {
  const { LOGIN_RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS } = fastify.config
  const limited = (): void => fastify.metrics.rateLimited.inc({ limit: 'login' })
  fastify.decorate('loginLimit', createLoginLimit(fastify.counters, LOGIN_RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS, limited))
}, { name: 'login-limit', dependencies: ['counters', 'metrics'] })

declare module 'fastify' {
  interface FastifyInstance {
    loginLimit: ReturnType<typeof createLoginLimit>
  }
}
