import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { build, privateRedis, testEnv, timed, waitFor } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

const BY_ID = /^SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = \$1/

/** Records the SQL the app sends for the test's duration, and can hold a query's result before the app sees it. */
function watchQueries (t: Test, app: FastifyInstance, hold?: (sql: string) => Promise<void> | undefined): string[] {
  const seen: string[] = []
  const query = app.pg.query
  app.pg.query = (async (sql: string, ...rest: unknown[]) => {
    seen.push(sql)
    const result = await (query as (...args: unknown[]) => Promise<unknown>)(sql, ...rest)
    await hold?.(sql)
    return result
  }) as typeof app.pg.query
  t.teardown(() => { app.pg.query = query })
  return seen
}

async function reader (app: FastifyInstance): Promise<{ authorization: string }> {
  return bearer((await login(app, await register(app))).accessToken)
}

t.test('GET /users/:id and GET /users answer a miss, then a hit', async t => {
  const app = await build(t)
  const auth = await reader(app)
  const user = await register(app)
  for (const url of [`/users/${user.id}`, '/users?limit=5']) {
    const first = await app.inject({ url, headers: auth })
    const second = await app.inject({ url, headers: auth })
    t.equal(first.headers['x-cache'], 'miss', `${url} first`)
    t.equal(second.headers['x-cache'], 'hit', `${url} second`)
    t.same(second.json(), first.json(), `${url}: the same answer`)
  }
  const missing = `/users/${crypto.randomUUID()}`
  t.equal((await app.inject({ url: missing, headers: auth })).statusCode, 404)
  const again = await app.inject({ url: missing, headers: auth })
  t.equal(again.statusCode, 404)
  t.equal(again.headers['x-cache'], 'hit', 'a 404 is cached too')
})

t.test('100 concurrent reads of a cold key make one PostgreSQL query', async t => {
  const app = await build(t)
  const auth = await reader(app)
  const user = await register(app)
  // The first read's query is held until the 99 others have joined it.
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const seen = watchQueries(t, app, async sql => { if (BY_ID.test(sql)) await gate })
  const reads = Promise.all(Array.from({ length: 100 }, async () => await app.inject({ url: `/users/${user.id}`, headers: auth })))
  await waitFor(() => app.cache.stats.dedupes === 99, { what: '99 reads to join the first one' }).finally(release)
  const answers = await reads
  t.same(new Set(answers.map(res => res.statusCode)), new Set([200]))
  t.equal(seen.filter(sql => BY_ID.test(sql)).length, 1)
  t.equal(app.cache.stats.dedupes, 99)
})

t.test('a write on one instance is served by the other at once', async t => {
  const env = await testEnv(t)
  const [a, b] = [await build(t, env), await build(t, env)]
  const user = await register(a)
  const own = bearer((await login(a, user)).accessToken)
  await b.inject({ url: `/users/${user.id}`, headers: own })
  await b.inject({ url: '/users', headers: own })
  t.equal((await b.inject({ url: `/users/${user.id}`, headers: own })).headers['x-cache'], 'hit')

  await a.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: own, payload: { name: 'Changed on A' } })
  const one = await b.inject({ url: `/users/${user.id}`, headers: own })
  t.equal(one.json().name, 'Changed on A')
  t.equal(one.headers['x-cache'], 'miss')
  t.equal((await b.inject({ url: '/users', headers: own })).json().items.find((u: { id: string }) => u.id === user.id).name, 'Changed on A', 'pages too')

  const newcomer = await register(a)
  t.ok((await b.inject({ url: '/users', headers: own })).json().items.some((u: { id: string }) => u.id === newcomer.id), 'a new user appears in a cached page at once')
})

t.test('pagination returns every user exactly once, in creation order, with a stable cursor under inserts', async t => {
  const app = await build(t)
  const auth = await reader(app)
  const create = async (n: number) => {
    for (let i = 0; i < n; i++) await app.usersRepository.create({ email: `p${Date.now()}${i}${Math.random()}@example.com`, name: `P${i}`, passwordHash: 'x' })
  }
  await create(24)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await app.inject({ url: `/users?limit=10${cursor === null ? '' : `&cursor=${cursor}`}`, headers: auth })
    t.equal(res.statusCode, 200)
    const body = res.json() as { items: Array<{ id: string, createdAt: string }>, nextCursor: string | null }
    seen.push(...body.items.map(item => item.id))
    cursor = body.nextCursor
    if (++pages === 1) await create(7)
  } while (cursor !== null)
  const { rows } = await app.pg.query<{ id: string }>('SELECT id FROM users ORDER BY created_at, id')
  t.same(seen, rows.map(row => row.id), 'every user once, in order, the ones inserted mid-way included')
  t.equal(seen.length, 32)
})

t.test('a read that loaded before a write never writes the old value back', async t => {
  const env = await testEnv(t)
  const [a, b] = [await build(t, env), await build(t, env)]
  const user = await register(a)
  const own = bearer((await login(a, user)).accessToken)
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let loaded!: () => void
  const loading = new Promise<void>(resolve => { loaded = resolve })
  watchQueries(t, a, async sql => {
    if (!BY_ID.test(sql)) return
    loaded()
    await gate
  })
  // A reads the old row, and is held before it can store it.
  const slowRead = a.inject({ url: `/users/${user.id}`, headers: own })
  await loading
  // Meanwhile B commits a change and invalidates.
  const patched = await b.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: own, payload: { name: 'After the write' } })
  t.equal(patched.statusCode, 200)
  release()
  const old = await slowRead
  t.equal(old.json().name, 'Test User', 'the held read answered what it read')
  for (const app of [a, b]) {
    const res = await app.inject({ url: `/users/${user.id}`, headers: own })
    t.equal(res.json().name, 'After the write', 'no instance serves the old value afterwards')
  }
})

t.test('Redis stopped: cached routes answer from PostgreSQL, fast, and caching resumes', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, REVOCATION_FAIL_MODE: 'open' }))
  const user = await register(app)
  const own = bearer((await login(app, user)).accessToken)
  await app.inject({ url: `/users/${user.id}`, headers: own })
  await redis.stop({ crash: true })

  for (const url of [`/users/${user.id}`, '/users']) {
    const [res, ms] = await timed(async () => await app.inject({ url, headers: own }))
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['x-cache'], 'miss', url)
    // Without a connection no command is tried: a few ms; 250 leaves a loaded machine its margin.
    t.ok(ms < 250, `${url} in ${Math.round(ms)} ms`)
  }
  await redis.start()
  await waitFor(() => app.redis.status === 'ready', { what: 'the app to reconnect to Redis' })
  const statuses = []
  for (let i = 0; i < 2; i++) statuses.push((await app.inject({ url: `/users/${user.id}`, headers: own })).headers['x-cache'])
  t.same(statuses, ['miss', 'hit'], 'caching resumed')
})

t.test('the service never sends KEYS, SCAN or FLUSH* to Redis', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url }))
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ url: `/users/${user.id}`, headers: bearer(pair.accessToken) })
  await app.inject({ url: '/users', headers: bearer(pair.accessToken) })
  await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: bearer(pair.accessToken), payload: { name: 'N' } })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.accessToken) })
  const stats = await app.redis.info('commandstats')
  t.match(stats, /cmdstat_(evalsha|mget|set)/, 'commands were counted')
  t.notMatch(stats, /cmdstat_(keys|scan|flushall|flushdb):/)
})
