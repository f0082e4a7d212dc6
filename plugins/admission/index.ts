import fp from 'fastify-plugin'
import type { AccessClaims } from '../../schemas/auth.js'
import type { Prefetched } from '../cache/index.js'
import { createBearerToken } from './bearer-token.js'
import type { CountsAndReads } from './counters.js'
import { budgetKey, createBudget, enforce, routeBudget, type Budget } from './rate-limit.js'
import type { RevocationRead } from './revocation.js'

/** What admission found out about a request, for `authenticate`, the cache and the handler. */
interface Admission {
  /** The bearer token's claims, on a route that authenticates, when the token verifies. */
  claims?: AccessClaims
  /** What Redis held under the token's revocation keys; absent when Redis was skipped. */
  revocation?: RevocationRead
  /** The cache entry that the route's `config.prefetch` named, as Redis held it. */
  prefetched?: Prefetched
}

const NOTHING_READ: Admission = Object.freeze({})

/**
 * Admission, before any other hook of a route: verify the bearer token (on routes that authenticate),
 * charge the request to its client (its user, else its IP) under the default budget and the route's own,
 * if it has one, and in the same Redis script read the token's revocation state and the cache entry
 * the route will read. The result is `request.admission`; nothing after it asks Redis again for what
 * it read. Every request is charged, 401s included.
 *
 * On a Cluster, where a script sees only its own slot, the cache entry is a read of its own, sent in
 * the same tick. While Redis is away the counting is per instance, in memory, and nothing is read.
 */
export default fp(async function admission (fastify) {
  const { counters, revocation, redis, redisBreaker } = fastify
  const { RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS, TRUST_PROXY, NODE_ENV } = fastify.config
  const claimsOf = createBearerToken(fastify.jwt)
  const defaultBudget = createBudget('default', { max: RATE_LIMIT_MAX, timeWindow: RATE_LIMIT_WINDOW_MS })
  const oneScript = !redis.isCluster

  if (TRUST_PROXY === 'true' && NODE_ENV === 'production') {
    fastify.log.warn('TRUST_PROXY=true believes the X-Forwarded-For that clients write: set the hop count or the addresses of your proxies')
  }

  fastify.addHook('onRoute', route => {
    const budget = routeBudget(route)
    if (budget !== undefined) route.config = { ...route.config, budget }
  })

  // Fastify shapes every request with this field up front; the hook below sets it before anything reads it.
  fastify.decorateRequest('admission', null as unknown as Admission)
  fastify.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config
    // A token names the client only where it is authenticated: elsewhere (register, login, refresh)
    // any token, a revoked one too, would be a way off the IP's budget.
    const claims = config.authenticated === true ? claimsOf(request) : undefined
    if (config.rateLimit === false) {
      request.admission = claims === undefined ? NOTHING_READ : { claims }
      return
    }
    const budgets = config.budget === undefined ? [defaultBudget] : [defaultBudget, config.budget]
    const own = claims === undefined ? [] : revocation.keys(claims)
    const ahead = claims === undefined ? [] : config.prefetch?.(request) ?? []
    const windows = budgets.map(budget => ({ key: budgetKey(budget, request, claims), windowMs: budget.windowMs }))

    let count: CountsAndReads
    let aside: Array<string | null> | undefined
    if (oneScript || ahead.length === 0) count = await counters.incrAll(windows, [...own, ...ahead])
    else [count, aside] = await Promise.all([counters.incrAll(windows, own), redisBreaker.attempt(async () => await redis.mget(...ahead), () => undefined)])
    enforce(budgets.map((budget, i) => ({ budget, count: count.counts[i]! })), reply, limited)

    const { values } = count
    const read = oneScript ? values?.slice(own.length) : aside
    request.admission = claims === undefined
      ? NOTHING_READ
      : { claims, revocation: values?.slice(0, own.length), prefetched: ahead.length > 0 && read !== undefined ? { keys: ahead, values: read } : undefined }
  })

  function limited (budget: Budget): void {
    fastify.metrics.rateLimited.inc({ limit: budget === defaultBudget ? 'global' : budget.name })
  }
}, { name: 'admission', dependencies: ['jwt', 'counters', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on the routes of the bearer scope (routes/protected.ts): a verified token names the client. */
    authenticated?: boolean
    /** The Redis keys of the cache entry the route will read (a loader's `keys`), read with the count. */
    prefetch?: (request: FastifyRequest) => string[] | undefined
    /** The route's own budget, built from its `rateLimit` when the route is added. */
    budget?: Budget
  }
  interface FastifyRequest {
    /** Set by admission's onRequest hook, before any hook of the route (still null on its own 429). */
    admission: Admission
  }
}
