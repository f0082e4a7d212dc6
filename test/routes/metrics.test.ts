import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { build, privateRedis, testEnv, waitFor } from '../helper.js'
import { parsePrometheus, valueOf, type Family } from '../prometheus.js'
import { bearer, login, register } from '../users.js'

async function scrape (app: FastifyInstance, ip = '192.0.2.50'): Promise<Map<string, Family>> {
  const res = await app.inject({ url: '/metrics', remoteAddress: ip })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  return parsePrometheus(res.body)
}

const metric = async (app: FastifyInstance, name: string, labels?: Record<string, string>): Promise<number | undefined> =>
  valueOf(await scrape(app), name, labels)

/** Polls /metrics until `done` holds (a Redis client reconnects in the background). */
async function eventually (app: FastifyInstance, what: string, done: (families: Map<string, Family>) => boolean): Promise<Map<string, Family>> {
  return await waitFor(async () => {
    const families = await scrape(app)
    return done(families) && families
  }, { what })
}

const SERVICE_METRICS = {
  pulsewatch_http_request_duration_seconds: 'histogram',
  pulsewatch_cache_hits_total: 'counter',
  pulsewatch_cache_misses_total: 'counter',
  pulsewatch_cache_dedupes_total: 'counter',
  pulsewatch_rate_limited_requests_total: 'counter',
  pulsewatch_rate_limit_fallback_active: 'gauge',
  pulsewatch_redis_fallback_switches_total: 'counter',
  pulsewatch_revoked_token_rejections_total: 'counter',
  pulsewatch_redis_errors_total: 'counter',
  pulsewatch_redis_reconnects_total: 'counter',
  pulsewatch_pg_pool_connections: 'gauge',
  pulsewatch_pg_pool_idle_connections: 'gauge',
  pulsewatch_pg_pool_waiting_requests: 'gauge',
  pulsewatch_pg_pool_max_connections: 'gauge',
  process_cpu_seconds_total: 'counter',
  nodejs_eventloop_lag_seconds: 'gauge'
}

t.test('GET /metrics answers valid Prometheus text with every service metric, without a token or a rate limit', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1' }))
  const answers = await Promise.all([1, 2, 3].map(async () => await app.inject({ url: '/metrics', remoteAddress: '192.0.2.1' })))
  t.same(answers.map(res => res.statusCode), [200, 200, 200], 'never a 429, even past RATE_LIMIT_MAX')
  t.notOk(answers[0]!.headers['x-ratelimit-limit'], 'no rate-limit headers')
  t.equal(answers[0]!.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  const families = parsePrometheus(answers[2]!.body)
  for (const [name, type] of Object.entries(SERVICE_METRICS)) {
    t.equal(families.get(name)?.type, type, `${name} is a ${type}`)
    t.ok((families.get(name)?.help.length ?? 0) > 10, `${name} says what it measures`)
  }
  t.equal(valueOf(families, 'pulsewatch_pg_pool_max_connections'), 20, 'the pool may open 20 connections')
  t.throws(() => parsePrometheus(`${answers[2]!.body}pulsewatch_undeclared 1\n`), /no declared family/, 'the reader rejects what Prometheus would')
})

t.test('request durations are labelled by route pattern and status code, never by the raw URL', async t => {
  const app = await build(t)
  const ids = [crypto.randomUUID(), crypto.randomUUID()]
  for (const id of ids) await app.inject({ url: `/users/${id}` })
  await app.inject({ url: `/no/such/${ids[0]!}` })
  await app.inject({ url: '/healthz' })
  const families = await scrape(app)
  t.equal(valueOf(families, 'pulsewatch_http_request_duration_seconds_count', { method: 'GET', route: '/users/:id', status_code: '401' }), 2, 'both ids are one series')
  t.equal(valueOf(families, 'pulsewatch_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1, 'an unknown URL is one series')
  t.equal(valueOf(families, 'pulsewatch_http_request_duration_seconds_count', { method: 'GET', route: '/healthz', status_code: '200' }), 1, '/healthz once')
  t.ok(valueOf(families, 'pulsewatch_http_request_duration_seconds_sum', { method: 'GET', route: '/healthz', status_code: '200' })! > 0, 'the time is recorded')
  const routes = new Set(families.get('pulsewatch_http_request_duration_seconds')!.samples.map(sample => sample.labels.route))
  t.notOk([...routes].some(route => route === undefined || ids.some(id => route.includes(id))), `no raw URL among ${[...routes].join(', ')}`)
})

t.test('cache hits, misses and deduplicated loads are counted as they happen', async t => {
  const app = await build(t)
  const user = await register(app)
  const auth = bearer((await login(app, user)).accessToken)
  const url = `/users/${user.id}`
  const count = async (): Promise<number[]> => {
    const families = await scrape(app)
    return ['hits', 'misses', 'dedupes'].map(what => valueOf(families, `pulsewatch_cache_${what}_total`)!)
  }
  const start = await count()
  t.equal((await app.inject({ url, headers: auth })).headers['x-cache'], 'miss')
  t.same(await count(), [start[0], start[1]! + 1, start[2]], 'a miss')
  t.equal((await app.inject({ url, headers: auth })).headers['x-cache'], 'hit')
  t.same(await count(), [start[0]! + 1, start[1]! + 1, start[2]], 'then a hit')
  const other = await register(app)
  await Promise.all(Array.from({ length: 5 }, async () => await app.usersCache.byId(other.id)))
  t.same(await count(), [start[0]! + 1, start[1]! + 2, start[2]! + 4], 'five concurrent reads of a cold key: one load, four joined it')
})

t.test('429s are counted by limit: the global limit and the login limit', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '3', LOGIN_RATE_LIMIT_MAX: '1' }))
  const user = await register(app)
  const limited = async (limit: string): Promise<number> => await metric(app, 'pulsewatch_rate_limited_requests_total', { limit }) ?? 0
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await app.inject({ url: '/users/me', remoteAddress: '198.51.100.4' })).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429])
  t.equal(await limited('global'), 2, 'two 429s from the global limit')
  t.equal(await limited('login'), 0, 'none from the login limit yet')

  const attempt = async (): Promise<number> => (await app.inject({
    method: 'POST', url: '/auth/login', remoteAddress: '198.51.100.5', payload: { email: user.email, password: 'a wrong password' }
  })).statusCode
  t.same([await attempt(), await attempt()], [401, 429])
  t.equal(await limited('login'), 1, 'one 429 from the login limit')
  t.equal(await limited('global'), 2, 'the global count is unchanged')
  t.equal((await app.inject({ url: '/metrics', remoteAddress: '198.51.100.4' })).statusCode, 200, 'a client out of budget still reads /metrics')
})

t.test('a revoked token\'s rejection is counted; other 401s are not', async t => {
  const app = await build(t)
  const user = await register(app)
  const { accessToken } = await login(app, user)
  const revoked = async (): Promise<number | undefined> => await metric(app, 'pulsewatch_revoked_token_rejections_total')
  t.equal(await revoked(), 0, 'none yet')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })).statusCode, 204)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(accessToken) })).statusCode, 401, 'the logged-out token is refused')
  t.equal(await revoked(), 1, 'and counted')
  t.equal((await app.inject({ url: '/users/me', headers: bearer('not.a.token') })).statusCode, 401)
  t.equal((await app.inject({ url: '/users/me' })).statusCode, 401)
  t.equal(await revoked(), 1, 'a malformed or missing token is not a revoked one')
})

t.test('Redis going away and coming back moves the error and reconnect counters and the fallback gauge', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url }))
  const before = await scrape(app)
  t.equal(valueOf(before, 'pulsewatch_redis_errors_total'), 0, 'no error yet')
  t.equal(valueOf(before, 'pulsewatch_redis_reconnects_total'), 0, 'no reconnect yet')
  t.equal(valueOf(before, 'pulsewatch_rate_limit_fallback_active'), 0, 'rate limits count in Redis')

  await redis.stop({ crash: true })
  const away = await eventually(app, 'a Redis error counted', families => valueOf(families, 'pulsewatch_redis_errors_total')! > 0)
  t.ok(valueOf(away, 'pulsewatch_redis_errors_total')! > 0, 'the failed reconnects are errors')
  t.equal(valueOf(away, 'pulsewatch_rate_limit_fallback_active'), 1, 'rate limits count in memory')
  t.equal(valueOf(away, 'pulsewatch_redis_reconnects_total'), 0, 'not reconnected yet')

  await redis.start()
  const back = await eventually(app, 'the reconnect counted', families => valueOf(families, 'pulsewatch_redis_reconnects_total') === 1)
  t.equal(valueOf(back, 'pulsewatch_redis_reconnects_total'), 1, 'one reconnect')
  t.equal(valueOf(back, 'pulsewatch_rate_limit_fallback_active'), 0, 'back to shared counters')
  t.ok(valueOf(back, 'pulsewatch_redis_fallback_switches_total')! >= 2, 'it switched away and back')
})

t.test('the PostgreSQL pool gauges follow connections in use', async t => {
  const app = await build(t)
  const clients = [await app.pg.connect(), await app.pg.connect()]
  t.teardown(() => { for (const client of clients) client.release() })
  const busy = await scrape(app)
  const total = valueOf(busy, 'pulsewatch_pg_pool_connections')!
  t.ok(total >= 2, `${total} connections open`)
  t.equal(valueOf(busy, 'pulsewatch_pg_pool_idle_connections'), total - 2, 'the two checked out are not idle')
  t.equal(valueOf(busy, 'pulsewatch_pg_pool_waiting_requests'), 0, 'nothing waits for a connection')
  clients.pop()!.release()
  t.equal(await metric(app, 'pulsewatch_pg_pool_idle_connections'), total - 1, 'a released connection is idle again')
})
