import fp from 'fastify-plugin'
import { Address6 } from 'ip-address'
import { isIPv6 } from 'node:net'
import type { Prefetched } from './cache.js'
import type { CountAndReads } from './counters.js'
import { httpError } from './errors.js'

/** What the rate limit's round trip read for the rest of the request; absent when Redis was skipped. */
export interface Admission {
  /** What Redis holds under `revocation.keys(claims)`, for `authenticate`. */
  revocation?: Array<string | null>
  /** The cache entry that the route's `config.prefetch` named. */
  prefetched?: Prefetched
}

/** A client IP as the name of its budget: IPv6 clients by their /64, which one subscriber usually holds. */
export function normalizeIP (ip: string | undefined): string {
  // Fastify has no address for a request whose socket is already gone: it still gets a budget.
  if (ip === undefined) return 'unknown'
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return new Address6(`${ip}/64`).startAddress().correctForm()
}

/**
 * The rate limit: RATE_LIMIT_MAX requests per RATE_LIMIT_WINDOW_MS per client, counted in Redis (exact
 * across replicas; per instance in memory while Redis is away). It is a global onRequest hook, before
 * any route's `authenticate`, so that every request is charged, 401s included, to exactly one budget:
 * the user of a token that verifies, else the IP. Routes opt out with `config: { rateLimit: false }`.
 *
 * Counting is also the request's one Redis round trip: the script that counts reads, in the same
 * call, whether the token is revoked and the cache entry that the route names in `config.prefetch`.
 * The user's counter and deny-list keys share a hash tag; on a Cluster, where a script sees only its
 * own slot, the prefetch is a read of its own, sent in the same tick.
 */
export default fp(async function rateLimit (fastify) {
  const { RATE_LIMIT_MAX: max, RATE_LIMIT_WINDOW_MS: windowMs } = fastify.config
  const { counters, revocation, redis, redisBreaker } = fastify
  const policy = `"default";q=${max};w=${Math.ceil(windowMs / 1000)}`
  const oneScript = !redis.isCluster

  if (fastify.config.TRUST_PROXY === 'true' && fastify.config.NODE_ENV === 'production') {
    fastify.log.warn('TRUST_PROXY=true believes the X-Forwarded-For that clients write: set the hop count or the addresses of your proxies')
  }

  // A token moves a request to its user's budget only on a route that authenticates it: on the others
  // (register, login, refresh) any token, a revoked one too, would be a way off the IP's budget.
  fastify.addHook('onRoute', route => {
    const guards = [route.onRequest ?? []].flat()
    route.config = { ...route.config, authenticated: guards.includes(fastify.authenticate) }
  })

  fastify.decorateRequest('admission', null)
  fastify.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config
    if (config?.rateLimit === false) return
    const claims = config.authenticated === true ? fastify.accessClaims(request) : undefined
    const own = claims === undefined ? [] : revocation.keys(claims)
    const ahead = claims === undefined ? [] : config?.prefetch?.(request) ?? []
    const key = claims === undefined ? `rl:ip:${normalizeIP(request.ip)}` : `rl:user:{${claims.sub}}`

    let count: CountAndReads
    let aside: Array<string | null> | undefined
    if (oneScript || ahead.length === 0) count = await counters.incr(key, windowMs, [...own, ...ahead])
    else [count, aside] = await Promise.all([counters.incr(key, windowMs, own), redisBreaker.attempt(async () => await redis.mget(...ahead), () => undefined)])

    const remaining = Math.max(0, max - count.current)
    const reset = Math.ceil(count.ttl / 1000)
    reply.header('x-ratelimit-limit', max)
    reply.header('x-ratelimit-remaining', remaining)
    reply.header('x-ratelimit-reset', reset)
    // The IETF fields (draft-ietf-httpapi-ratelimit-headers) beside the customary x-ratelimit-* ones.
    reply.header('ratelimit-policy', policy)
    reply.header('ratelimit', `"default";r=${remaining};t=${reset}`)
    if (count.current > max) {
      reply.header('retry-after', reset)
      fastify.metrics.rateLimited.inc({ limit: 'global' })
      throw httpError(429, `Rate limit exceeded, retry in ${reset} second${reset === 1 ? '' : 's'}`)
    }

    const { values } = count
    if (values === undefined || claims === undefined) return
    const read = oneScript ? values.slice(own.length) : aside
    request.admission = {
      revocation: values.slice(0, own.length),
      prefetched: ahead.length > 0 && read !== undefined ? { keys: ahead, values: read } : undefined
    }
  })
}, { name: 'rate-limit', dependencies: ['counters', 'auth', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the route is not rate limited (health, metrics, docs). */
    rateLimit?: false
    /** Set for every route: whether its onRequest hooks include `authenticate` (then a verified token names the client). */
    authenticated?: boolean
    /** The Redis keys of the cache entry the route will read (a loader's `keys`), read with the rate limit. */
    prefetch?: (request: FastifyRequest) => string[] | undefined
  }
  interface FastifyRequest {
    admission: Admission | null
  }
}
