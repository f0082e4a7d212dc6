import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { build, privateRedis, testEnv } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

/** The names of the commands the app hands to its Redis client while `run` runs. */
async function commandsOf (t: Test, app: FastifyInstance, run: () => Promise<unknown>): Promise<string[]> {
  const client = app.redis as unknown as { sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown }
  const sent = t.capture(client, 'sendCommand', client.sendCommand)
  try {
    await run()
  } finally {
    sent.restore()
  }
  return sent.args().map(([command]) => command.name)
}

/** Read events on Redis's client sockets: commands that arrive together are read at once. */
async function redisReads (redis: Redis): Promise<number> {
  return Number(/total_reads_processed:(\d+)/.exec(await redis.info('stats'))?.[1])
}

async function warmReader (t: Test): Promise<{ app: FastifyInstance, auth: { authorization: string }, id: string }> {
  const app = await build(t)
  await register(app)
  const user = await register(app)
  const auth = bearer((await login(app, user)).accessToken)
  // The first reads fill the user's token generation and the cache entries.
  for (let i = 0; i < 2; i++) {
    await app.inject({ url: `/users/${user.id}`, headers: auth })
    await app.inject({ url: '/users?limit=5', headers: auth })
  }
  return { app, auth, id: user.id }
}

t.test('a cached GET /users/:id sends Redis one command: the rate limit\'s script, which also reads the revocation keys and the entry', async t => {
  const { app, auth, id } = await warmReader(t)
  const answers: Array<{ statusCode: number, headers: Record<string, unknown> }> = []
  const names = await commandsOf(t, app, async () => {
    for (let i = 0; i < 5; i++) answers.push(await app.inject({ url: `/users/${id}`, headers: auth }))
  })
  t.same(answers.map(res => [res.statusCode, res.headers['x-cache']]), Array(5).fill([200, 'hit']))
  t.same(names, Array(5).fill('evalsha'), 'one script per request, nothing else')
  t.ok(answers.every(res => res.headers['x-ratelimit-remaining'] !== undefined), 'the script is the rate limit')
})

t.test('a cached page of GET /users, with or without a cursor, rides on the same script', async t => {
  const { app, auth } = await warmReader(t)
  const first = await app.inject({ url: '/users?limit=1', headers: auth })
  const cursor = first.json().nextCursor as string
  await app.inject({ url: `/users?limit=1&cursor=${cursor}`, headers: auth })
  const answers: Array<{ headers: Record<string, unknown> }> = []
  const names = await commandsOf(t, app, async () => {
    answers.push(await app.inject({ url: '/users', headers: auth }))
    answers.push(await app.inject({ url: '/users?limit=5', headers: auth }))
    answers.push(await app.inject({ url: `/users?limit=1&cursor=${cursor}`, headers: auth }))
  })
  t.same(answers.map(res => res.headers['x-cache']), ['miss', 'hit', 'hit'], 'the default page was not read yet; the others were')
  t.same(names, ['evalsha', 'set', 'evalsha', 'evalsha'], 'a miss loads and stores its value without reading Redis again; a hit is the script alone')
})

t.test('a revoked token is refused by what the script read: no second round trip', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ url: `/users/${user.id}`, headers: bearer(pair.accessToken) })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.accessToken) })).statusCode, 204)
  let refused: { statusCode: number } | undefined
  const names = await commandsOf(t, app, async () => { refused = await app.inject({ url: `/users/${user.id}`, headers: bearer(pair.accessToken) }) })
  t.equal(refused?.statusCode, 401)
  t.same(names, ['evalsha'])
})

t.test('a prefetched entry is taken only for the key it was read for, and only while its fence is current', async t => {
  const app = await build(t)
  const load = async (id: string): Promise<string> => `loaded ${id}`
  const loader = app.cache.define('round-trip-test', { fence: (id: string) => `rt:${id}`, key: (id: string) => id }, load)
  const stored = JSON.stringify({ g: '7', v: 'stored a' })
  t.same(await loader('a', { keys: loader.keys('a'), values: [stored, '7'] }), { value: 'stored a', hit: true }, 'its own key, current: a hit without Redis')
  t.same(await loader('b', { keys: loader.keys('a'), values: [stored, '7'] }), { value: 'loaded b', hit: false }, 'another key\'s entry is never served')
  t.same(await loader('a', { keys: loader.keys('a'), values: [stored, '8'] }), { value: 'loaded a', hit: false }, 'an entry of an older generation is stale')
  t.same(await loader('c', { keys: loader.keys('c'), values: ['not json', null] }), { value: 'loaded c', hit: false }, 'an unreadable entry is a miss')
})

t.test('a prefetched miss is fenced by the generation admission read: a value loaded across an invalidation is never served', async t => {
  const app = await build(t)
  let loads = 0
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const loader = app.cache.define('fence-test', { fence: (id: string) => `fn:${id}`, key: (id: string) => id }, async (id: string) => {
    loads++
    if (loads === 1) await gate
    return `${id} v${loads}`
  })
  const keys = loader.keys('k')
  const first = loader('k', { keys, values: await app.redis.mget(...keys) })
  const joined = loader('k', { keys, values: await app.redis.mget(...keys) })
  await app.cache.invalidate('fn:k')
  release()
  t.same(await Promise.all([first, joined]), [{ value: 'k v1', hit: false }, { value: 'k v1', hit: false }], 'two misses, one load')
  t.same(await loader('k'), { value: 'k v2', hit: false }, 'what the first load stored predates the invalidation: loaded again')
  t.same(await loader('k'), { value: 'k v2', hit: true }, 'then served from the cache')
  t.equal(loads, 2)
})

t.test('an entry served from its parsed form is the same object on every read, and frozen so that no reader can change it for the next', async t => {
  const app = await build(t)
  const loader = app.cache.define('frozen-test', { fence: (id: string) => `fz:${id}`, key: (id: string) => id }, async (id: string) => ({ id, tags: ['a'] }))
  const stored = JSON.stringify({ g: '1', v: { id: 'x', tags: ['a'] } })
  const read = async (): Promise<{ id: string, tags: string[] }> => (await loader('x', { keys: loader.keys('x'), values: [stored, '1'] })).value
  const first = await read()
  const second = await read()
  t.equal(first, second, 'parsed once')
  t.ok(Object.isFrozen(first) && Object.isFrozen(first.tags), 'frozen, nested values too')
  t.throws(() => { first.tags.push('b') }, TypeError)
  t.same((await read()).tags, ['a'], 'the next reader gets what is stored')
})

t.test('commands issued in one event-loop turn leave in one write, and Redis reads them at once', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url }))
  const before = await redisReads(app.redis)
  await Promise.all(Array.from({ length: 20 }, async (_, i) => await app.redis.get(`round-trip:${i}`)))
  // The second INFO is a read of its own.
  t.equal(await redisReads(app.redis) - before - 1, 1, 'twenty GETs, one read')
})
