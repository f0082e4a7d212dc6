import type { FastifyInstance } from 'fastify'
import { rmSync } from 'node:fs'
import t, { type Test } from 'tap'
import { startRedisCluster, startSentinelGroup } from '../../../scripts/redis-topologies.js'
import { makeTempDir, type LocalServer } from '../../../scripts/servers.js'
import { build, testEnv, waitFor, type Env } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

async function topology<T extends Record<string, unknown>> (t: Test, start: (dir: string) => Promise<T>, servers: (started: T) => LocalServer[]): Promise<T> {
  const dir = makeTempDir('pw-topology-')
  const started = await start(dir)
  t.teardown(async () => {
    await Promise.all(servers(started).map(async server => await server.stop()))
    rmSync(dir, { recursive: true, force: true })
  })
  return started
}

/** The authentication, rate-limit and cache flows, across two instances. */
async function flows (t: Test, env: Env): Promise<void> {
  const [a, b] = [await build(t, env), await build(t, env)]
  const user = await register(a)
  const pair = await login(b, user)
  const auth = bearer(pair.accessToken)

  const first = await a.inject({ url: `/users/${user.id}`, headers: auth })
  const client = a.redis as unknown as { sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown }
  const sent = t.capture(client, 'sendCommand', client.sendCommand)
  const second = await a.inject({ url: `/users/${user.id}`, headers: auth })
  sent.restore()
  t.same([first.statusCode, first.headers['x-cache'], second.headers['x-cache']], [200, 'miss', 'hit'], 'cache: miss, then hit')
  // A script sees only its own hash slot on a Cluster: the entry is read beside it, in the same tick.
  t.same(sent.args().map(([command]) => command.name), a.redis.isCluster ? ['evalsha', 'mget'] : ['evalsha'], 'a hit costs the rate limit\'s script (and on a Cluster the entry\'s MGET)')
  await b.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth, payload: { name: 'Renamed' } })
  t.equal((await a.inject({ url: `/users/${user.id}`, headers: auth })).json().name, 'Renamed', 'cache: invalidation seen by the other instance')
  t.equal((await a.inject({ url: '/users', headers: auth })).headers['x-cache'], 'miss')

  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: auth })).statusCode, 204)
  t.equal((await b.inject({ url: '/users/me', headers: auth })).statusCode, 401, 'auth: logout seen by the other instance')
  const next = await login(a, user)
  t.equal((await b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(next.accessToken) })).statusCode, 204)
  t.equal((await a.inject({ url: '/users/me', headers: bearer(next.accessToken) })).statusCode, 401, 'auth: logout-all')

  const limited = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await (i % 2 === 0 ? a : b).inject({ url: '/users/me', remoteAddress: '192.0.2.44' })).statusCode))
  t.equal(limited.filter(status => status !== 429).length, 20, 'rate limit: exact across instances')
  const failures = []
  for (let i = 0; i < 4; i++) failures.push((await a.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.45', payload: { email: user.email, password: 'not the password' } })).statusCode)
  t.same(failures, [401, 401, 401, 429], 'login limit')
}

t.test('on a three-master Redis Cluster the authentication, rate-limit and cache flows pass', async t => {
  const cluster = await topology(t, async dir => await startRedisCluster(dir), started => started.nodes)
  await flows(t, await testEnv(t, { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_URL: 'redis://cluster', RATE_LIMIT_MAX: '20', LOGIN_RATE_LIMIT_MAX: '3' }))
})

t.test('with Sentinel, the flows pass, and the service rides through the master\'s death', async t => {
  const group = await topology(t, async dir => await startSentinelGroup(dir), started => [...started.sentinels, started.master, started.replica])
  const env = await testEnv(t, { REDIS_SENTINELS: group.addresses, REDIS_URL: 'redis://sentinel', REDIS_WAIT_REPLICAS: '1', RATE_LIMIT_MAX: '20', LOGIN_RATE_LIMIT_MAX: '3' })
  await flows(t, env)

  const app: FastifyInstance = await build(t, { ...env, RATE_LIMIT_MAX: '100000' })
  const user = await register(app)
  const revoked = await login(app, user)
  const live = bearer((await login(app, user)).accessToken)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked.accessToken) })).statusCode, 204, 'a logout acknowledged (after WAIT for the replica)')

  // Every answer during the failover is recorded: each poll is also a request of the traffic.
  const statuses = new Map<number, number>()
  const killedAt = Date.now()
  await group.master.stop({ crash: true })
  await waitFor(() => app.redis.status !== 'ready', { what: 'the app to see its master gone' })
  await waitFor(async () => {
    const read = await app.inject({ url: `/users/${user.id}`, headers: live })
    statuses.set(read.statusCode, (statuses.get(read.statusCode) ?? 0) + 1)
    const ready = await app.inject('/readyz')
    return ready.json().checks.redis === 'ok' && read.statusCode === 200 && read.headers['x-cache'] !== undefined
  }, { what: 'full function after the master\'s death', timeoutMs: 10_000, intervalMs: 20 })
  t.pass(`full function within 10 s of the kill (${Date.now() - killedAt} ms)`)
  t.same([...statuses.keys()].filter(status => status !== 200 && status !== 503), [], `answers during the failover follow the fault rules: ${JSON.stringify([...statuses])}`)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(revoked.accessToken) })).statusCode, 401, 'the logout acknowledged before the kill is still enforced')
  const cached = [await app.inject({ url: `/users/${user.id}`, headers: live }), await app.inject({ url: `/users/${user.id}`, headers: live })]
  t.equal(cached[1]?.headers['x-cache'], 'hit', 'caching works on the new master')
  const unsafe = await app.inject({ method: 'POST', url: '/auth/logout', headers: live })
  t.equal(unsafe.statusCode, 503, 'with no replica left to acknowledge it, a logout is refused rather than acknowledged unsafely')
})
