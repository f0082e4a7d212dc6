import http from 'node:http'
import t from 'tap'
import { freePort } from '../scripts/servers.js'
import { createDatabase, testEnv, timed } from './helper.js'
import { listening, printed, spawnServer } from './process.js'

const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), LOG_LEVEL: 'warn' }

t.test('the process refuses to start half-configured, with one line naming the variable', async t => {
  const env = await testEnv(t)
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['missing DATABASE_URL in production', { ...production, REDIS_URL: env.REDIS_URL! }, /^pulsewatch: DATABASE_URL is required when NODE_ENV=production$/],
    ['a short JWT_SECRET in production', { ...env, ...production, JWT_SECRET: 'too-short' }, /^pulsewatch: JWT_SECRET must be at least 32 characters/],
    ['a malformed PORT', { ...env, PORT: 'eighty' }, /^pulsewatch: PORT is invalid/]
  ]
  for (const [name, vars, line] of cases) {
    const server = await spawnServer(t, vars)
    const { code } = await server.exited
    t.equal(code, 1, name)
    const lines = server.stderr().trim().split('\n')
    t.equal(lines.length, 1, `${name}: one line`)
    t.match(lines[0], line, name)
  }
})

t.test('an unreachable Redis or PostgreSQL at start: exit non-zero within 15 s with one line naming it', async t => {
  const env = await testEnv(t)
  const deadPort = await freePort()
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['Redis', { ...env, REDIS_URL: `redis://127.0.0.1:${deadPort}` }, /^pulsewatch: cannot start: Redis is unreachable at REDIS_URL redis:\/\/127\.0\.0\.1:\d+/],
    ['PostgreSQL', { ...env, DATABASE_URL: `postgres://postgres:pw@127.0.0.1:${deadPort}/x` }, /^pulsewatch: cannot start: PostgreSQL is unreachable at DATABASE_URL postgres:\/\/postgres:\*\*\*@127/]
  ]
  await Promise.all(cases.map(async ([name, vars, line]) => {
    const server = await spawnServer(t, vars)
    const [{ code }, ms] = await timed(async () => await server.exited)
    t.not(code, 0, `${name}: non-zero exit`)
    // The promise itself; the boot deadline is 5 s, which leaves a loaded machine 10 s of margin.
    t.ok(ms < 15_000, `${name}: exited after ${Math.round(ms)} ms`)
    const lines = server.stderr().trim().split('\n')
    t.equal(lines.length, 1, `${name}: one line`)
    t.match(lines[0], line, name)
  }))
})

t.test('SIGTERM: readiness turns 503, requests in flight finish, keep-alive clients are let go, exit 0', async t => {
  const env = await testEnv(t, { SHUTDOWN_DELAY_MS: '700', DATABASE_URL: await createDatabase(t) })
  // At info the server logs each incoming request and the start of its drain: the test waits on those lines.
  const server = await spawnServer(t, { ...env, LOG_LEVEL: 'info' })
  await listening(server)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const { port } = new URL(server.url)
  const request = (path: string, options: http.RequestOptions = {}) => http.request({ host: '127.0.0.1', port, path, agent, ...options })
  const answer = async (req: http.ClientRequest): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> =>
    await new Promise((resolve, reject) => {
      req.on('error', reject)
      req.on('response', res => {
        let body = ''
        res.on('data', chunk => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      })
    })

  const warm = await answer(request('/readyz').end())
  t.equal(warm.status, 200)
  t.equal(warm.headers.connection, 'keep-alive')

  // A request in flight: headers sent, its body still on the way when the signal comes.
  const body = JSON.stringify({ email: 'drain@example.com', password: 'long enough', name: 'Drain' })
  const slowAgent = new http.Agent({ keepAlive: true })
  t.teardown(() => slowAgent.destroy())
  const slow = http.request({ host: '127.0.0.1', port, path: '/auth/register', method: 'POST', agent: slowAgent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } })
  const slowAnswer = answer(slow)
  slow.write(body.slice(0, 10))
  await printed(server, /^(?=.*"incoming request")(?=.*"\/auth\/register").*$/m)

  server.child.kill('SIGTERM')
  await printed(server, /"draining before close"/)
  const draining = await answer(request('/readyz').end())
  t.equal(draining.status, 503, 'readiness turns 503 at once')
  t.equal(draining.headers.connection, 'close', 'answers after the signal carry Connection: close')
  t.match(JSON.parse(draining.body), { statusCode: 503, error: 'Service Unavailable' })

  slow.end(body.slice(10))
  const finished = await slowAnswer
  t.equal(finished.status, 201, 'the request in flight finished')
  const { code } = await server.exited
  t.equal(code, 0, 'exit 0')
})

t.test('a started process serves /readyz with both dependencies ok', async t => {
  const env = await testEnv(t)
  const server = await spawnServer(t, { ...env, ...production, DATABASE_URL: env.DATABASE_URL!, REDIS_URL: env.REDIS_URL! })
  await listening(server)
  const res = await fetch(`${server.url}/readyz`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } })
  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0)
})
