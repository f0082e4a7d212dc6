import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { build, createDatabase, privatePostgres, testEnv } from './helper.js'

t.test('GET /healthz answers without touching a dependency', async t => {
  const app = await build(t)
  const res = await app.inject('/healthz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /readyz reports each dependency as ok', async t => {
  const app = await build(t)
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } })
})

type Methods = Record<string, (...args: unknown[]) => unknown>

/** Counts the calls of a decorator's method for the test's duration; the real method still runs. */
const counted = (t: Test, object: object, method: string): { calls: Array<{ args: unknown[] }> } =>
  t.capture(object as Methods, method, (object as Methods)[method])

const readyz = async (app: FastifyInstance): Promise<{ status: number, body: unknown }> => {
  const res = await app.inject('/readyz')
  return { status: res.statusCode, body: res.json() }
}

t.test('GET /readyz cannot be used to load PostgreSQL: concurrent and repeated calls within a second share one round of checks', async t => {
  const app = await build(t)
  // The real queries and pings run; only their calls are counted.
  const queries = counted(t, app.pg, 'query')
  const pings = counted(t, app.redis, 'ping')
  const selects = (): number => queries.calls.filter(call => call.args[0] === 'SELECT 1').length

  const started = performance.now()
  const answers = await Promise.all(Array.from({ length: 50 }, async () => await readyz(app)))
  for (let i = 0; i < 5; i++) {
    await sleep(100)
    answers.push(await readyz(app))
  }
  const elapsed = performance.now() - started
  t.same(new Set(answers.map(answer => JSON.stringify(answer))), new Set([JSON.stringify({ status: 200, body: { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } } })]), `${answers.length} answers, all ok`)
  // At most one round per second begun: 1 when the machine kept up, 2 if the calls took over a second.
  t.ok(selects() >= 1 && selects() <= 1 + Math.floor(elapsed / 1000), `SELECT 1 ran ${selects()} time(s) for ${answers.length} calls in ${Math.round(elapsed)} ms`)
  t.equal(pings.calls.length, selects(), 'and so did PING')

  // The control: once the round is a second old, the next call checks again.
  await sleep(1100)
  const before = selects()
  t.equal((await readyz(app)).status, 200)
  t.equal(selects(), before + 1, 'a second later, a new round of checks')
})

t.test('GET /readyz still reports a PostgreSQL outage within about a second, and the failed round is shared too', async t => {
  const postgres = await privatePostgres(t)
  const app = await build(t, await testEnv(t, { DATABASE_URL: await createDatabase(t, postgres.url) }))
  t.match(await readyz(app), { status: 200, body: { checks: { postgres: 'ok' } } }, 'a round of checks that will be shared')
  await postgres.stop()

  const stopped = performance.now()
  let answer = await readyz(app)
  while ((answer.body as { checks: { postgres: string } }).checks.postgres !== 'fail' && performance.now() - stopped < 5000) {
    await sleep(50)
    answer = await readyz(app)
  }
  const ms = performance.now() - stopped
  t.same(answer, { status: 200, body: { status: 'degraded', checks: { redis: 'ok', postgres: 'fail' } } })
  t.ok(ms < 1500, `reported ${Math.round(ms)} ms after PostgreSQL stopped`)

  const queries = counted(t, app.pg, 'query')
  const answers = await Promise.all(Array.from({ length: 50 }, async () => await readyz(app)))
  t.ok(answers.every(a => a.status === 200), 'still 200: one shared outage must not pull every replica')
  t.ok(queries.calls.length <= 1, `${queries.calls.length} query for 50 calls during the outage`)
})

t.test('GET /readyz turns 503 at once when draining, even with a round of checks just shared', async t => {
  const app = await build(t, await testEnv(t, { SHUTDOWN_DELAY_MS: '1000' }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/readyz`
  t.equal((await fetch(url)).status, 200)
  const closing = app.close()
  await sleep(50)
  const draining = await fetch(url)
  t.equal(draining.status, 503)
  t.match(await draining.json(), { statusCode: 503, error: 'Service Unavailable' })
  await closing
})
