import fastifyRateLimit, { normalizeIP, type FastifyRateLimitStore } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { httpError } from '../app/errors.js'

/**
 * @fastify/rate-limit on our counters (Redis, exact across replicas, with a per-instance fallback).
 * The limit runs as a global onRequest hook, before any route's `authenticate`, so that every request
 * is charged, 401s included, to exactly one budget: the user of a token that verifies, else the IP.
 * Routes opt out with `config: { rateLimit: false }`.
 */
export default fp(async function rateLimit (fastify) {
  const { RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS } = fastify.config
  const { counters } = fastify

  class CountersStore implements FastifyRateLimitStore {
    incr (key: string, callback: (err: Error | null, result?: { current: number, ttl: number }) => void, timeWindow = RATE_LIMIT_WINDOW_MS): void {
      counters.incr(`rl:${key}`, timeWindow).then(result => callback(null, result), callback)
    }

    child (): FastifyRateLimitStore {
      return this
    }
  }

  await fastify.register(fastifyRateLimit, {
    global: false,
    max: RATE_LIMIT_MAX,
    timeWindow: RATE_LIMIT_WINDOW_MS,
    store: CountersStore,
    keyGenerator: async (request) => {
      const claims = await fastify.accessClaims(request)
      return claims === undefined ? `ip:${normalizeIP(request.ip)}` : `user:${claims.sub}`
    },
    onExceeded: () => fastify.metrics.rateLimited.inc({ limit: 'global' }),
    errorResponseBuilder: (_request, context) => httpError(context.statusCode, `Rate limit exceeded, retry in ${context.after}`)
  })

  const limit = fastify.rateLimit()
  fastify.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.rateLimit === false) return
    await limit.call(fastify, request, reply)
  })

  // The IETF fields (draft-ietf-httpapi-ratelimit-headers) beside the customary x-ratelimit-* ones.
  const policy = `"default";q=${RATE_LIMIT_MAX};w=${Math.ceil(RATE_LIMIT_WINDOW_MS / 1000)}`
  fastify.addHook('onSend', async (_request, reply) => {
    const remaining = reply.getHeader('x-ratelimit-remaining')
    if (remaining === undefined) return
    reply.header('ratelimit-policy', policy)
    reply.header('ratelimit', `"default";r=${String(remaining)};t=${String(reply.getHeader('x-ratelimit-reset'))}`)
  })
}, { name: 'rate-limit', dependencies: ['counters', 'auth', 'metrics'] })
