import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { makeTempDir, startRedis } from '../scripts/servers.js'
import { build, lockTable, testEnv, waitFor, type Env } from './helper.js'
import { printed, spawnServer, type ServerProcess } from './process.js'
import { register } from './users.js'

const DAY_MS = 86_400_000

const spawnWorker = async (t: Test, env: Env): Promise<ServerProcess> => await spawnServer(t, env, 'worker.ts')

/** A login whose only refresh token expired 40 days ago: the purge's to delete. */
async function expiredLogin (env: Env): Promise<string> {
  const client = new pg.Client({ connectionString: env.DATABASE_URL })
  await client.connect()
  try {
    const { rows: [user] } = await client.query<{ id: string }>('SELECT id FROM users LIMIT 1')
    const id = randomUUID()
    await client.query('INSERT INTO sessions (id, user_id) VALUES ($1, $2)', [id, user!.id])
    await client.query('INSERT INTO refresh_tokens (token_hash, session_id, generation, expires_at) VALUES ($1, $2, 0, $3)', [randomBytes(32), id, new Date(Date.now() - 40 * DAY_MS)])
    return id
  } finally {
    await client.end()
  }
}

async function sessionExists (env: Env, id: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: env.DATABASE_URL })
  await client.connect()
  try {
    return (await client.query('SELECT 1 FROM sessions WHERE id = $1', [id])).rowCount === 1
  } finally {
    await client.end()
  }
}

async function preparedEnv (t: Test, overrides: Env = {}): Promise<Env> {
  const env = await testEnv(t, { LOG_LEVEL: 'info', ...overrides })
  // The app migrates the database and makes a user; the worker then runs on the same environment.
  await register(await build(t, env))
  return env
}

t.test('the worker purges at start and on its schedule; SIGTERM mid-job lets the job finish, then exits 0', async t => {
  const env = await preparedEnv(t)
  const doomed = await expiredLogin(env)
  const { release } = await lockTable(t, env.DATABASE_URL!, 'refresh_tokens')
  const worker = await spawnWorker(t, env)
  await printed(worker, /"msg":"job started"/, 20_000)

  worker.child.kill('SIGTERM')
  await printed(worker, /"msg":"stopping: the job in hand finishes first"/)
  t.equal(worker.child.exitCode, null, 'still running while its job waits')
  await release()
  const exit = await worker.exited
  t.same(exit, { code: 0, signal: null })
  t.match(worker.stdout(), /"msg":"job completed"/)
  t.match(worker.stdout(), /"result":\{"sessions":1,"refreshTokens":1\}/, 'it reports what it deleted')
  t.equal(await sessionExists(env, doomed), false)
})

t.test('SIGKILL mid-job: another worker takes the job up once its lock lapses', async t => {
  const env = await preparedEnv(t, { JOB_LOCK_MS: '1000' })
  const doomed = await expiredLogin(env)
  const { release } = await lockTable(t, env.DATABASE_URL!, 'refresh_tokens')
  const first = await spawnWorker(t, env)
  await printed(first, /"msg":"job started"/, 20_000)
  const id = /"id":"([^"]+)","msg":"job started"/.exec(first.stdout())?.[1]
  t.ok(id, 'the job has an id')
  first.child.kill('SIGKILL')
  await first.exited

  const second = await spawnWorker(t, env)
  await printed(second, new RegExp(`"id":"${id!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}","msg":"job started"`), 20_000)
  await release()
  await printed(second, /"msg":"job completed"/, 20_000)
  t.equal(await sessionExists(env, doomed), false, 'the purge ran to its end')
  second.child.kill('SIGTERM')
  t.same(await second.exited, { code: 0, signal: null })
})

t.test('Redis restarted empty under a running worker: it reconnects, schedules the purge again, and jobs flow, without a restart', async t => {
  const dir = makeTempDir('pw-restart-')
  const redis = await startRedis(join(dir, 'redis'))
  t.teardown(async () => await redis.stop())
  const env = await preparedEnv(t, { REDIS_URL: redis.url })
  const worker = await spawnWorker(t, env)
  await printed(worker, /"msg":"job completed"/, 20_000)

  await redis.stop({ crash: true })
  await redis.start()
  const completed = (): number => worker.stdout().match(/"msg":"job completed"/g)?.length ?? 0
  await printed(worker, /"msg":"purge scheduled"[\s\S]*"msg":"purge scheduled"/, 30_000)
  await waitFor(() => completed() === 2, { what: 'the purge to run again on the restarted Redis', timeoutMs: 30_000 })
  t.equal(worker.child.exitCode, null, 'the same process')
  worker.child.kill('SIGTERM')
  t.same(await worker.exited, { code: 0, signal: null })
})

t.test('a queue Redis that may evict: refused in production with one line naming it, a warning elsewhere', async t => {
  const dir = makeTempDir('pw-lru-')
  const lru = await startRedis(join(dir, 'redis'), undefined, ['--maxmemory-policy', 'allkeys-lru'])
  t.teardown(async () => await lru.stop())
  const env = await preparedEnv(t)

  const production = await spawnWorker(t, { ...env, NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), QUEUE_REDIS_URL: lru.url })
  t.same(await production.exited, { code: 1, signal: null })
  t.equal(production.stderr().trim().split('\n').length, 1, 'one line')
  t.match(production.stderr(), /maxmemory-policy allkeys-lru.*noeviction/)

  const development = await spawnWorker(t, { ...env, QUEUE_REDIS_URL: lru.url })
  await printed(development, /"msg":"worker ready"/, 20_000)
  t.match(development.stdout(), /"level":40.*maxmemory-policy allkeys-lru/, 'warned')
  development.child.kill('SIGTERM')
  t.same(await development.exited, { code: 0, signal: null })
})
