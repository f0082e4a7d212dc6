import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { build, createDatabase, lockTable, privatePostgres, privateRedis, testEnv, waitFor, type Env } from '../../helper.js'
import { accountsWithEmail } from '../../users.js'
import { listening, spawnServer } from '../../process.js'

const registration = () => ({ email: `o${randomBytes(5).toString('hex')}@example.com`, password: 'a good password', name: 'Outage' })
const register = async (app: FastifyInstance, payload: object, key?: string) =>
  await app.inject({ method: 'POST', url: '/auth/register', payload, headers: key === undefined ? {} : { 'idempotency-key': key } })

async function entryKeys (env: Env): Promise<string[]> {
  const redis = new Redis(env.REDIS_URL!)
  try {
    return await redis.keys(`${env.REDIS_KEY_PREFIX}idem:*`)
  } finally {
    redis.disconnect()
  }
}

t.test('Redis stopped: a request with the header is 503 with retry-after, one without runs', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url }))
  await redis.stop()

  const keyed = await register(app, registration(), randomUUID())
  t.equal(keyed.statusCode, 503)
  t.match(keyed.json(), { statusCode: 503, error: 'Service Unavailable', code: 'PW_IDEMPOTENCY_UNAVAILABLE' })
  t.equal(keyed.headers['retry-after'], '2')
  t.equal((await register(app, registration())).statusCode, 201, 'without the header: unaffected')

  await redis.start()
  const payload = registration()
  const key = randomUUID()
  await t.resolves(waitFor(async () => (await register(app, payload, key)).statusCode === 201, { what: 'a keyed registration' }), 'works again when Redis is back')
  t.equal((await register(app, payload, key)).headers['idempotent-replayed'], 'true')
})

t.test('a PostgreSQL outage\'s 503 is not stored: the same request runs once PostgreSQL is back', async t => {
  const postgres = await privatePostgres(t)
  const app = await build(t, await testEnv(t, { DATABASE_URL: await createDatabase(t, postgres.url) }))
  const payload = registration()
  const key = randomUUID()
  await postgres.stop()
  t.equal((await register(app, payload, key)).statusCode, 503)

  await postgres.start()
  await t.resolves(waitFor(async () => (await app.inject('/readyz')).json().checks.postgres === 'ok', { what: 'PostgreSQL' }))
  const retried = await register(app, payload, key)
  t.equal(retried.statusCode, 201, 'ran: not the 503 replayed, not 409')
  t.notOk('idempotent-replayed' in retried.headers)
})

t.test('a process killed mid-request leaves its key in flight only until its lease expires', async t => {
  const env = await testEnv(t, { IDEMPOTENCY_LEASE_MS: '1000' })
  const doomed = await spawnServer(t, env)
  const survivor = await build(t, env)
  await listening(doomed)
  const stuck = await lockTable(t, env.DATABASE_URL!, 'users')
  const payload = registration()
  const key = randomUUID()

  const lost = fetch(`${doomed.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(payload) })
    .then(res => res.status, () => 'no answer')
  await waitFor(async () => (await entryKeys(env)).length === 1, { what: 'the doomed request to take its key' })
  doomed.child.kill('SIGKILL')
  t.equal(await lost, 'no answer')

  const blocked = await register(survivor, payload, key)
  t.equal(blocked.statusCode, 409, 'in flight while the lease lasts')
  t.equal(blocked.json().code, 'PW_IDEMPOTENCY_IN_FLIGHT')
  await stuck.release({ endWaiting: true })
  await waitFor(async () => (await entryKeys(env)).length === 0, { what: 'the lease to expire', timeoutMs: 10_000 })
  const retried = await register(survivor, payload, key)
  t.equal(retried.statusCode, 201, 'then the retry runs')
})

t.test('a request that runs for several leases keeps its key, over a real socket, and its answer is kept', async t => {
  const env = await testEnv(t, { IDEMPOTENCY_LEASE_MS: '1000' })
  const app = await build(t, env)
  const other = await build(t, env)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const stuck = await lockTable(t, env.DATABASE_URL!, 'users')
  const payload = registration()
  const key = randomUUID()

  const slow = fetch(`${url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(payload) })
    .then(async res => ({ status: res.status, body: await res.text() }))
  const since = Date.now()
  await waitFor(async () => (await entryKeys(env)).length === 1, { what: 'the request to take its key' })
  // Three leases without an answer: only renewals can have kept the mark alive.
  await waitFor(() => Date.now() - since > 3000, { what: 'three leases to pass', timeoutMs: 10_000 })
  const during = await register(other, payload, key)
  t.equal(during.statusCode, 409, 'still in flight after three leases')
  t.equal(during.json().code, 'PW_IDEMPOTENCY_IN_FLIGHT')

  await stuck.release()
  const first = await slow
  t.equal(first.status, 201)
  const replayed = await register(other, payload, key)
  t.equal(replayed.statusCode, 201)
  t.equal(replayed.headers['idempotent-replayed'], 'true')
  t.equal(replayed.body, first.body, 'the slow request\'s own answer')
})

t.test('REDIS_WAIT_REPLICAS not met: the mark is not trusted, the request does not run, and Redis is not blamed', async t => {
  // The suite's Redis has no replica: WAIT 1 always falls short.
  const env = await testEnv(t, { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '20' })
  const app = await build(t, env)
  const payload = registration()
  const refused = await register(app, payload, randomUUID())
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'PW_IDEMPOTENCY_UNAVAILABLE')
  t.same(await entryKeys(env), [], 'the mark was taken back')
  t.equal(await accountsWithEmail(app, payload.email), 0, 'nothing ran')
  t.equal(app.redisBreaker.open, false, 'a replica short is not a Redis failure: the breaker stays closed')
  t.equal((await register(app, registration())).statusCode, 201, 'without the header: unaffected')
})
