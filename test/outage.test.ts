import type { FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import t from 'tap'
import { build, createDatabase, privatePostgres, privateRedis, testEnv, timed, waitFor } from './helper.js'
import { bearer, login, register } from './users.js'

async function authedGet (app: FastifyInstance, token: string): Promise<number> {
  return (await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode
}

t.test('Redis stopped: readiness turns degraded at once, and recovers when Redis returns, without a restart', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url }))
  await redis.stop({ crash: true })

  const [res, ms] = await timed(async () => await app.inject('/readyz'))
  t.equal(res.statusCode, 200, 'still 200: one shared outage must not pull every replica')
  t.same(res.json(), { status: 'degraded', checks: { redis: 'fail', postgres: 'ok' } })
  // A stopped Redis is known without a round trip: a few ms, against a second allowed.
  t.ok(ms < 1000, `answered in ${Math.round(ms)} ms`)
  t.equal((await app.inject('/healthz')).statusCode, 200)

  await redis.start()
  await t.resolves(waitFor(async () => (await app.inject('/readyz')).json().status === 'ok', { what: 'readiness ok' }), 'ready again')
})

t.test('REVOCATION_FAIL_MODE=closed answers 503 within a second while Redis is down, then recovers by itself', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'closed' }))
  const { accessToken } = await login(app, await register(app))
  await redis.stop()

  const [res, ms] = await timed(async () => await app.inject({ url: '/users/me', headers: bearer(accessToken) }))
  t.equal(res.statusCode, 503)
  t.match(res.json(), { statusCode: 503, error: 'Service Unavailable', message: /revocation/ })
  // The promise of the name; without a connection no command is tried: a few ms.
  t.ok(ms < 1000, `answered in ${Math.round(ms)} ms`)

  await redis.start()
  await t.resolves(waitFor(async () => await authedGet(app, accessToken) === 200, { what: 'the token to verify' }), 'tokens verify again')
})

t.test('a Redis outage is logged once, not once per request it refuses', async t => {
  const lines: Array<{ level: number, msg: string, reqId?: string }> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'closed', LOG_LEVEL: 'info' }), { stream })
  const { accessToken } = await login(app, await register(app))
  await redis.stop({ crash: true })
  const statuses = []
  for (let i = 0; i < 20; i++) statuses.push((await app.inject({ url: '/users/me', headers: bearer(accessToken) })).statusCode)
  t.same(statuses, Array(20).fill(503))
  const warnings = lines.filter(line => line.level >= 40)
  t.equal(warnings.filter(line => line.reqId !== undefined).length, 0, `no request wrote a warning or error: ${JSON.stringify(warnings.map(line => line.msg))}`)
  t.equal(warnings.filter(line => /redis unavailable/.test(line.msg)).length, 1, 'the breaker said it once')
  await t.resolves(app.close(), 'and the app still closes cleanly while Redis is away (SIGTERM during an outage)')
})

t.test('REVOCATION_FAIL_MODE=open lets verified tokens through while Redis is down, and still refuses bad ones', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'open' }))
  const { accessToken } = await login(app, await register(app))
  await redis.stop()

  const [status, ms] = await timed(async () => await authedGet(app, accessToken))
  t.equal(status, 200)
  // Without a connection no command is tried: a few ms, against a second allowed.
  t.ok(ms < 1000, `answered in ${Math.round(ms)} ms`)
  t.equal(await authedGet(app, `${accessToken}x`), 401)

  await redis.start()
  await t.resolves(waitFor(async () => (await app.inject('/readyz')).json().status === 'ok', { what: 'readiness ok' }))
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })
  t.equal(await authedGet(app, accessToken), 401, 'revocation works again after the outage')
})

t.test('Redis stopped: logout answers 503 rather than acknowledging a revocation it could not store', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'open' }))
  const { accessToken } = await login(app, await register(app))
  await redis.stop()
  const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { statusCode: 503, message: /revocation/ })
  await redis.start()
  await t.resolves(waitFor(async () => (await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })).statusCode === 204, { what: 'a logout acknowledged' }))
  t.equal(await authedGet(app, accessToken), 401)
})

t.test('a reconnection ends the breaker\'s cool-down: a logout acknowledged once Redis is back is enforced at once', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'open' }))
  const { accessToken } = await login(app, await register(app))
  await redis.stop()
  // A command that fails as Redis goes away trips the breaker for its cool-down (2 s).
  const tripped = Date.now()
  app.redisBreaker.trip(new Error('Connection is closed.'))
  await redis.start()
  if (app.redis.status !== 'ready') await once(app.redis, 'ready')
  t.equal(app.redisBreaker.open, false, 'the new connection closed the breaker')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })).statusCode, 204)
  t.equal(await authedGet(app, accessToken), 401, 'the revoked token is refused, not let through by REVOCATION_FAIL_MODE=open')
  // Not a speed claim: had the cool-down run out by itself, this test would have proved nothing.
  t.ok(Date.now() - tripped < 2000, 'all within what was the cool-down')
})

t.test('a hung Redis (SIGSTOP) costs a request at most the command timeout', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'closed' }))
  const { accessToken } = await login(app, await register(app))
  process.kill(redis.pid, 'SIGSTOP')
  t.teardown(() => { process.kill(redis.pid, 'SIGCONT') })

  const [status, ms] = await timed(async () => await authedGet(app, accessToken))
  t.equal(status, 503)
  // At most one command timeout (200 ms); a second leaves a loaded machine its margin.
  t.ok(ms < 1000, `answered in ${Math.round(ms)} ms`)
  const [next, nextMs] = await timed(async () => await authedGet(app, accessToken))
  t.equal(next, 503)
  // A request that waited would take the command timeout (200 ms); one that did not, a few ms.
  t.ok(nextMs < 100, `the next request pays no timeout: the breaker is open (${Math.round(nextMs)} ms)`)
  process.kill(redis.pid, 'SIGCONT')
  await t.resolves(waitFor(async () => await authedGet(app, accessToken) === 200, { what: 'the token to verify' }))
})

t.test('PostgreSQL stopped: routes that need it answer 503 in the contract shape, readiness degrades, and both recover', async t => {
  const postgres = await privatePostgres(t)
  const app = await build(t, await testEnv(t, { DATABASE_URL: await createDatabase(t, postgres.url) }))
  const user = await register(app)
  await postgres.stop()

  const [res, ms] = await timed(async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } }))
  t.equal(res.statusCode, 503)
  t.same(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode'])
  t.notMatch(res.body, /ECONNREFUSED|127\.0\.0\.1|SELECT|postgres/i, 'no internal detail leaks')
  // The pool's connection attempt is refused at once; 3 s leaves a loaded machine its margin.
  t.ok(ms < 3000, `answered in ${Math.round(ms)} ms`)
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'degraded', checks: { redis: 'ok', postgres: 'fail' } })

  await postgres.start()
  await t.resolves(waitFor(async () => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })).statusCode === 200, { what: 'a login' }))
  await t.resolves(waitFor(async () => (await app.inject('/readyz')).json().status === 'ok', { what: 'readiness ok' }), 'readiness recovers')
})
