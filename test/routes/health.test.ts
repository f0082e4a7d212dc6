import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { build, createDatabase, privatePostgres, testEnv, waitFor } from '../helper.js'

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
  t.equal(selects(), 1, '50 concurrent calls, one round of checks')
  // Then a call every 50 ms, until one begins a new round.
  await waitFor(async () => {
    answers.push(await readyz(app))
    return selects() > 1
  }, { what: 'a new round of checks', timeoutMs: 5000 })
  const renewed = performance.now() - started
  t.same(new Set(answers.map(answer => JSON.stringify(answer))), new Set([JSON.stringify({ status: 200, body: { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } } })]), `${answers.length} answers, all ok`)
  t.equal(selects(), 2, `${answers.length - 1} calls shared the first round`)
  t.equal(pings.calls.length, 2, 'and so did PING')
  // Not before a second, by construction; the upper bound leaves a loaded machine a second of margin.
  t.ok(renewed >= 1000 && renewed < 2000, `the second round began ${Math.round(renewed)} ms after the first call`)
})

t.test('GET /readyz still reports a PostgreSQL outage within about a second, and the failed round is shared too', async t => {
  const postgres = await privatePostgres(t)
  const app = await build(t, await testEnv(t, { DATABASE_URL: await createDatabase(t, postgres.url) }))
  t.match(await readyz(app), { status: 200, body: { checks: { postgres: 'ok' } } }, 'a round of checks that will be shared')
  await postgres.stop()

  const stopped = performance.now()
  const answer = await waitFor(async () => {
    const latest = await readyz(app)
    return (latest.body as { checks: { postgres: string } }).checks.postgres === 'fail' && latest
  }, { what: 'readiness to report PostgreSQL failing', timeoutMs: 5000 })
  const ms = performance.now() - stopped
  t.same(answer, { status: 200, body: { status: 'degraded', checks: { redis: 'ok', postgres: 'fail' } } })
  // A round serves for a second; the rest leaves a loaded machine its margin.
  t.ok(ms < 2000, `reported ${Math.round(ms)} ms after PostgreSQL stopped`)

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
  await waitFor(() => app.lifecycle.draining, { what: 'the drain to begin' })
  const draining = await fetch(url)
  t.equal(draining.status, 503)
  t.match(await draining.json(), { statusCode: 503, error: 'Service Unavailable' })
  await closing
})
