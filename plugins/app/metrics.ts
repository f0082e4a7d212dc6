import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * `metrics`: this instance's Prometheus registry. The counters that other plugins move when their event
 * happens are fields here (`rateLimited`, `revokedTokens`, `idempotency`); whatever another plugin already counts
 * (cache stats, the Redis breaker, the PostgreSQL pool) is read when Prometheus scrapes.
 */
function createMetrics () {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    requestDuration: new Histogram({
      name: 'pulsewatch_http_request_duration_seconds',
      help: 'Time to answer a request, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers
    }),
    rateLimited: new Counter({
      name: 'pulsewatch_rate_limited_requests_total',
      help: 'Requests refused with 429, by limit: global (per client), a route\'s own budget ("POST /auth/register"), login (per IP and email) or account (failed logins per email)',
      labelNames: ['limit'] as const,
      registers
    }),
    revokedTokens: new Counter({
      name: 'pulsewatch_revoked_token_rejections_total',
      help: 'Requests refused with 401 because their verified token, login or generation was revoked',
      registers
    }),
    idempotency: new Counter({
      name: 'pulsewatch_idempotency_requests_total',
      help: 'Requests with an Idempotency-Key that did not run, by outcome: replayed (the stored answer), conflict (409: the first is in flight), mismatch (422: the key was used for another request), unavailable (503: Redis is away)',
      labelNames: ['outcome'] as const,
      registers
    }),
    redisErrors: new Counter({ name: 'pulsewatch_redis_errors_total', help: 'Error events of the Redis client (failed connections and connection faults)', registers }),
    redisReconnects: new Counter({ name: 'pulsewatch_redis_reconnects_total', help: 'Times the Redis client became ready again after losing its connection', registers })
  }
}

type Metrics = ReturnType<typeof createMetrics>

/** A metric whose value is read from elsewhere at scrape time. */
function read (registry: Registry, type: 'counter' | 'gauge', name: string, help: string, value: () => number): void {
  registry.registerMetric(type === 'gauge'
    ? new Gauge({ name, help, registers: [], collect () { this.set(value()) } })
    : new Counter({ name, help, registers: [], collect () { this.reset(); this.inc(value()) } }))
}

function readStats (fastify: FastifyInstance, registry: Registry): void {
  const { cache, redisBreaker, pg } = fastify
  read(registry, 'counter', 'pulsewatch_cache_hits_total', 'Cached reads answered from Redis', () => cache.stats.hits)
  read(registry, 'counter', 'pulsewatch_cache_misses_total', 'Cached reads that loaded from PostgreSQL', () => cache.stats.misses)
  read(registry, 'counter', 'pulsewatch_cache_dedupes_total', 'Cached reads that joined a load already in flight on this instance', () => cache.stats.dedupes)
  read(registry, 'gauge', 'pulsewatch_rate_limit_fallback_active', '1 while Redis is skipped and rate limits count in this instance\'s memory, else 0', () => redisBreaker.open ? 1 : 0)
  read(registry, 'counter', 'pulsewatch_redis_fallback_switches_total', 'Times the service switched between Redis and its per-instance fallback, either way', () => redisBreaker.switches)
  read(registry, 'gauge', 'pulsewatch_pg_pool_connections', 'PostgreSQL connections open in the pool, busy or idle', () => pg.pool.totalCount)
  read(registry, 'gauge', 'pulsewatch_pg_pool_idle_connections', 'PostgreSQL connections open and idle', () => pg.pool.idleCount)
  read(registry, 'gauge', 'pulsewatch_pg_pool_waiting_requests', 'Queries waiting for a PostgreSQL connection', () => pg.pool.waitingCount)
  read(registry, 'gauge', 'pulsewatch_pg_pool_max_connections', 'The most connections the pool may open', () => pg.pool.options.max)
}

export default fp(async function metrics (fastify) {
  const metrics = createMetrics()
  readStats(fastify, metrics.registry)
  fastify.decorate('metrics', metrics)

  // Route patterns, never raw URLs, so that the number of series stays bounded. A callback hook, as
  // it waits for nothing: on every request, a promise less.
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.requestDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    done()
  })

  fastify.redis.on('error', () => metrics.redisErrors.inc())
  // Listening starts after the first connection (the redis plugin waits for it): every 'ready' is a reconnect.
  fastify.redis.on('ready', () => metrics.redisReconnects.inc())
}, { name: 'metrics', dependencies: ['redis', 'postgres', 'redis-breaker', 'cache'] })

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}
