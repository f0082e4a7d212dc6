import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadConfig } from '../../../config.js'
import { TokenPair } from '../../../schemas/auth.js'
import { testEnv, build, TEST_REDIS_URL } from '../../helper.js'
import { parsePrometheus, valueOf } from '../../prometheus.js'
import { accountsWithEmail, bearer, login, register } from '../../users.js'

const newEmail = (): string => `i${randomBytes(5).toString('hex')}@example.com`
const registration = (email = newEmail()) => ({ email, password: 'a good password', name: 'Idem Potent' })

async function registerWith (app: FastifyInstance, key: string, payload: object, remoteAddress?: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/auth/register', headers: { 'idempotency-key': key }, payload, ...(remoteAddress === undefined ? {} : { remoteAddress }) })
}

async function outcomes (app: FastifyInstance): Promise<{ replayed: number, conflict: number, mismatch: number }> {
  const families = parsePrometheus((await app.inject('/metrics')).body)
  const of = (outcome: string): number => valueOf(families, 'pulsewatch_idempotency_requests_total', { outcome }) ?? 0
  return { replayed: of('replayed'), conflict: of('conflict'), mismatch: of('mismatch') }
}

async function replicas (t: Test): Promise<{ a: FastifyInstance, b: FastifyInstance, prefix: string }> {
  const env = await testEnv(t)
  return { a: await build(t, env), b: await build(t, env), prefix: env.REDIS_KEY_PREFIX! }
}

t.test('a retry after completion gets the stored answer, byte for byte, from any replica', async t => {
  const { a, b } = await replicas(t)
  const key = `"${randomUUID()}"`
  const body = registration()

  const first = await registerWith(a, key, body)
  t.equal(first.statusCode, 201)
  t.notOk('idempotent-replayed' in first.headers, 'the first answer says nothing new')

  const again = await registerWith(b, key, body)
  t.equal(again.statusCode, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body, first.body, 'the same bytes')
  t.equal(again.headers['content-type'], first.headers['content-type'])
  t.not(again.headers['x-request-id'], first.headers['x-request-id'], 'the replay has its own request id')
  t.equal(await accountsWithEmail(a, body.email), 1, 'the account was created once')

  const before = await outcomes(b)
  const other = await registerWith(b, key, { ...body, name: 'Someone Else' })
  t.equal(other.statusCode, 422, 'the same key with another body')
  t.equal(other.json().code, 'PW_IDEMPOTENCY_KEY_REUSED')
  t.same(await outcomes(b), { ...before, mismatch: before.mismatch + 1 })
})

t.test('a replay counts on the metrics, and key spellings that mean the same key are one key', async t => {
  const { a } = await replicas(t)
  const body = registration()
  t.equal((await registerWith(a, '"order-7"', body)).statusCode, 201)
  const before = await outcomes(a)
  // The draft's quoted string and a bare token spell the same key.
  const bare = await registerWith(a, 'order-7', body)
  t.equal(bare.statusCode, 201)
  t.equal(bare.headers['idempotent-replayed'], 'true')
  t.same(await outcomes(a), { ...before, replayed: before.replayed + 1 })
})

t.test('an entry belongs to one client, one method and one route', async t => {
  const { a, b } = await replicas(t)
  const key = randomUUID()
  const body = registration()
  t.equal((await registerWith(a, key, body, '10.0.0.1')).statusCode, 201)

  // Another address with the same key and body does not get the first client's answer: it runs.
  const stranger = await registerWith(b, key, body, '10.0.0.2')
  t.equal(stranger.statusCode, 409, 'ran, and found the email taken')
  t.equal(stranger.json().code, 'PW_EMAIL_TAKEN')
  t.notOk('idempotent-replayed' in stranger.headers)
  const otherBody = await registerWith(b, key, registration(), '10.0.0.3')
  t.equal(otherBody.statusCode, 201, 'and with its own body, a client of its own is no mismatch')

  // The same key on another route, and by two users, is independent.
  const alice = await register(a)
  const bob = await register(a)
  const [aliceToken, bobToken] = [(await login(a, alice)).accessToken, (await login(a, bob)).accessToken]
  const patch = async (app: FastifyInstance, user: { id: string }, token: string, name: string) =>
    await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: { ...bearer(token), 'idempotency-key': key }, payload: { name } })
  const byAlice = await patch(a, alice, aliceToken, 'Alice')
  const byBob = await patch(b, bob, bobToken, 'Bob')
  t.equal(byAlice.statusCode, 200)
  t.equal(byBob.statusCode, 200)
  t.equal(byBob.json().name, 'Bob', 'Bob\'s request ran')
  t.notOk('idempotent-replayed' in byBob.headers)
  t.equal((await patch(b, alice, aliceToken, 'Alice')).headers['idempotent-replayed'], 'true', 'Alice\'s retry is a replay')
})

t.test('only answers that say what the request did are stored', async t => {
  const { a, b } = await replicas(t)

  await t.test('a 400 from validation: a corrected retry runs', async t => {
    const key = randomUUID()
    const body = registration()
    const invalid = await registerWith(a, key, { ...body, password: 'short' })
    t.equal(invalid.statusCode, 400)
    const corrected = await registerWith(b, key, body)
    t.equal(corrected.statusCode, 201)
    t.notOk('idempotent-replayed' in corrected.headers)
  })

  await t.test('a 401 from re-authentication: a retry with the right password runs', async t => {
    const user = await register(a)
    const { accessToken } = await login(a, user)
    const key = randomUUID()
    const change = (currentPassword: string) => ({ method: 'PATCH' as const, url: `/users/${user.id}`, headers: { ...bearer(accessToken), 'idempotency-key': key }, payload: { email: newEmail(), currentPassword } })
    const wrong = await a.inject(change('not the password'))
    t.equal(wrong.statusCode, 401)
    const right = await b.inject(change(user.password))
    t.equal(right.statusCode, 200, 'the key was freed, and another body is no mismatch against nothing')
  })

  await t.test('a 403 and a 409 of the handler are stored and replayed', async t => {
    const [owner, other] = [await register(a), await register(a)]
    const { accessToken } = await login(a, other)
    const key = randomUUID()
    const remove = { method: 'DELETE' as const, url: `/users/${owner.id}`, headers: { ...bearer(accessToken), 'idempotency-key': key } }
    const refused = await a.inject(remove)
    t.equal(refused.statusCode, 403)
    const replayed = await b.inject(remove)
    t.equal(replayed.statusCode, 403)
    t.equal(replayed.headers['idempotent-replayed'], 'true')
    t.equal(replayed.body, refused.body)

    const taken = registration(owner.email)
    const conflictKey = randomUUID()
    t.equal((await registerWith(a, conflictKey, taken)).statusCode, 409)
    const again = await registerWith(b, conflictKey, taken)
    t.equal(again.statusCode, 409)
    t.equal(again.headers['idempotent-replayed'], 'true')
  })

  await t.test('an admin\'s DELETE is replayed as 204, once deleted', async t => {
    const [admin, target] = [await register(a), await register(a)]
    await a.pg.query('UPDATE users SET role = \'admin\' WHERE id = $1', [admin.id])
    const { accessToken } = await login(a, admin)
    const remove = { method: 'DELETE' as const, url: `/users/${target.id}`, headers: { ...bearer(accessToken), 'idempotency-key': 'delete-target' } }
    t.equal((await a.inject(remove)).statusCode, 204)
    const again = await b.inject(remove)
    t.equal(again.statusCode, 204, 'not 404: the retry learns that its delete happened')
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.equal(again.body, '')
    const withoutKey = await b.inject({ ...remove, headers: bearer(accessToken) })
    t.equal(withoutKey.statusCode, 404, 'without the key, the request runs again')
  })
})

t.test('logout-all with one key sent twice at once runs once', async t => {
  const { a, b } = await replicas(t)
  const user = await register(a)
  const { accessToken } = await login(a, user)
  const request = { method: 'POST' as const, url: '/auth/logout-all', headers: { ...bearer(accessToken), 'idempotency-key': randomUUID() } }
  const answers = await Promise.all([a.inject(request), b.inject(request)])
  const [ran, other] = answers[0]!.statusCode === 204 ? answers : [answers[1]!, answers[0]!]
  t.equal(ran!.statusCode, 204, 'one ran')
  // In flight, or (had it come once the first had answered) the replay: never run twice.
  t.ok(other!.statusCode === 409 || other!.headers['idempotent-replayed'] === 'true', `the other did not run (${other!.statusCode})`)
  const { rows } = await a.pg.query<{ generation: number }>('SELECT token_generation AS generation FROM users WHERE id = $1', [user.id])
  t.equal(rows[0]!.generation, 1, 'the generation was bumped once')
})

t.test('a retry whose token its first send revoked gets the first answer, and only that login, only that request', async t => {
  const { a, b } = await replicas(t)

  await t.test('logout-all, deleting oneself, a new password: replayed to the revoked token', async t => {
    const user = await register(a)
    const [first, second] = [(await login(a, user)).accessToken, (await login(a, user)).accessToken]
    const key = randomUUID()
    const logoutAll = (token: string) => ({ method: 'POST' as const, url: '/auth/logout-all', headers: { ...bearer(token), 'idempotency-key': key } })
    t.equal((await a.inject(logoutAll(first))).statusCode, 204)
    const retry = await b.inject(logoutAll(first))
    t.equal(retry.statusCode, 204, 'not 401: the retry learns its logout-all happened')
    t.equal(retry.headers['idempotent-replayed'], 'true')
    const otherLogin = await b.inject(logoutAll(second))
    t.equal(otherLogin.statusCode, 401, 'another login of the same user, revoked too, does not get it')
    t.equal(otherLogin.json().code, 'PW_TOKEN_REVOKED')
    const otherKey = await b.inject({ ...logoutAll(first), headers: { ...bearer(first), 'idempotency-key': randomUUID() } })
    t.equal(otherKey.statusCode, 401, 'a revoked token with a key that holds no answer: 401, and nothing runs')
    t.equal((await b.inject({ ...logoutAll(first), headers: bearer(first) })).statusCode, 401, 'without a key: 401')
    // API.md: a revoked token answers 401 on every bearer route, whatever else it sends.
    const malformedKey = await b.inject({ ...logoutAll(first), headers: { ...bearer(first), 'idempotency-key': 'a b' } })
    t.equal(malformedKey.statusCode, 401, 'a malformed key: 401, not 400')
    t.equal(malformedKey.json().code, 'PW_TOKEN_REVOKED')

    const target = await register(a)
    const { accessToken } = await login(a, target)
    const remove = { method: 'DELETE' as const, url: `/users/${target.id}`, headers: { ...bearer(accessToken), 'idempotency-key': key } }
    t.equal((await a.inject(remove)).statusCode, 204)
    const again = await b.inject(remove)
    t.equal(again.statusCode, 204, 'deleting oneself: the retry gets 204')
    t.equal(again.headers['idempotent-replayed'], 'true')

    const changer = await register(a)
    const changerToken = (await login(a, changer)).accessToken
    const change = (payload: object) => ({ method: 'PATCH' as const, url: `/users/${changer.id}`, headers: { ...bearer(changerToken), 'idempotency-key': key }, payload })
    const newPassword = { password: 'a brand new password', currentPassword: changer.password }
    const changed = await a.inject(change(newPassword))
    t.equal(changed.statusCode, 200)
    const replayed = await b.inject(change(newPassword))
    t.equal(replayed.statusCode, 200, 'a new password: the retry gets the 200')
    t.equal(replayed.body, changed.body)
    const otherBody = await b.inject(change({ name: 'Not Applied', password: 'a brand new password', currentPassword: changer.password }))
    t.equal(otherBody.statusCode, 401, 'another request under the key, with the revoked token: 401, not 422, and it does not run')
    const invalidBody = await b.inject(change({ name: 42 }))
    t.equal(invalidBody.statusCode, 401, 'an invalid body with the revoked token: 401, not 400')
    t.equal(invalidBody.json().code, 'PW_TOKEN_REVOKED')
    const { rows } = await a.pg.query<{ name: string }>('SELECT name FROM users WHERE id = $1', [changer.id])
    t.equal(rows[0]!.name, changer.name)
  })
})

t.test('a malformed key is a 400 in the error shape, and the request does not run', async t => {
  const { a } = await replicas(t)
  for (const key of ['', '""', 'a b', '"unterminated', `"${'k'.repeat(256)}"`, '"\u00e9"', '"a", "b"']) {
    const body = registration()
    const res = await a.inject({ method: 'POST', url: '/auth/register', headers: { 'idempotency-key': key }, payload: body })
    t.equal(res.statusCode, 400, JSON.stringify(key))
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', code: 'PW_IDEMPOTENCY_KEY_INVALID' })
    t.equal(await accountsWithEmail(a, body.email), 0)
  }
  const twice = await a.inject({ method: 'POST', url: '/auth/register', headers: { 'idempotency-key': ['"one"', '"two"'] }, payload: registration() })
  t.equal(twice.statusCode, 400, 'two header lines')
})

t.test('login and refresh ignore the header: a token pair is never stored', async t => {
  const { a, prefix } = await replicas(t)
  const user = await register(a)
  const headers = { 'idempotency-key': '"same"' }
  const logins = [
    await a.inject({ method: 'POST', url: '/auth/login', headers, payload: { email: user.email, password: user.password } }),
    await a.inject({ method: 'POST', url: '/auth/login', headers, payload: { email: user.email, password: user.password } })
  ]
  t.same(logins.map(res => res.statusCode), [200, 200])
  t.not(logins[0]!.json().accessToken, logins[1]!.json().accessToken, 'two logins, two pairs')
  t.notOk(logins.some(res => 'idempotent-replayed' in res.headers))
  const refreshed = await a.inject({ method: 'POST', url: '/auth/refresh', headers, payload: { refreshToken: logins[0]!.json().refreshToken } })
  t.equal(refreshed.statusCode, 200)
  const redis = new Redis(TEST_REDIS_URL())
  t.teardown(() => redis.disconnect())
  t.same(await redis.keys(`${prefix}idem:*`), [], 'no entry was written')
})

t.test('entries: client as hash tag, a TTL on every one, no password or hash in them', async t => {
  const { a, prefix } = await replicas(t)
  const redis = new Redis(TEST_REDIS_URL())
  t.teardown(() => redis.disconnect())
  const body = registration()
  const created = await registerWith(a, 'ttl-check', body)
  const user = await register(a)
  const { accessToken } = await login(a, user)
  await a.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: { ...bearer(accessToken), 'idempotency-key': 'ttl-check' }, payload: { password: 'another good password', currentPassword: user.password } })

  const keys = (await redis.keys(`${prefix}idem:*`)).sort()
  t.equal(keys.length, 2)
  t.match(keys[0], new RegExp(`^${prefix}idem:ip:\\{127\\.0\\.0\\.1\\}:POST:/auth/register:[A-Za-z0-9_-]{43}$`))
  t.match(keys[1], new RegExp(`^${prefix}idem:user:\\{${user.id}\\}:PATCH:/users/:id:[A-Za-z0-9_-]{43}$`))
  const { rows } = await a.pg.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [created.json().id])
  for (const key of keys) {
    const ttl = await redis.pttl(key)
    t.ok(ttl > 0 && ttl <= 86_400_000, `${key} expires (${ttl} ms)`)
    const value = (await redis.get(key))!
    for (const secret of [body.password, user.password, 'another good password', rows[0]!.password_hash]) t.notOk(value.includes(secret), 'no password or hash')
  }
})

t.test('OpenAPI documents the header where it is accepted, and only there', async t => {
  const { a } = await replicas(t)
  const spec = (await a.inject('/docs/json')).json()
  const takesKey = (method: string, path: string): boolean =>
    (spec.paths[path][method].parameters ?? []).some((p: { in: string, name: string }) => p.in === 'header' && p.name === 'idempotency-key')
  for (const [method, path] of [['post', '/auth/register'], ['patch', '/users/{id}'], ['delete', '/users/{id}'], ['post', '/auth/logout-all']] as const) {
    t.ok(takesKey(method, path), `${method} ${path}`)
    t.ok(spec.paths[path][method].responses['422'], `${method} ${path} documents 422`)
  }
  for (const [method, path] of [['post', '/auth/login'], ['post', '/auth/refresh'], ['post', '/auth/logout'], ['get', '/users/{id}']] as const) {
    t.notOk(takesKey(method, path), `not ${method} ${path}`)
  }
})

t.test('routes without the option get no hook: the hot path pays nothing', async t => {
  const { a } = await replicas(t)
  const hooked = (method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE'): number =>
    a.printRoutes({ method, includeHooks: true, commonPrefix: false }).match(/takeIdempotencyKey\(\)/g)?.length ?? 0
  t.same({ GET: hooked('GET'), HEAD: hooked('HEAD'), POST: hooked('POST'), PATCH: hooked('PATCH'), DELETE: hooked('DELETE') },
    { GET: 0, HEAD: 0, POST: 2, PATCH: 1, DELETE: 1 }, 'register and logout-all, PATCH and DELETE /users/:id')
})

t.test('a route whose answer names a credential cannot opt in: the app refuses to start', async t => {
  const { default: app, serverOptions } = await import('../../../app.js')
  const config = loadConfig(await testEnv(t))
  const nested = Type.Object({ session: Type.Object({ refreshToken: Type.String() }) })
  for (const response of [TokenPair, nested, Type.Array(nested)]) {
    const fastify = Fastify(serverOptions(config))
    t.teardown(async () => await fastify.close())
    await fastify.register(app, { config })
    const started = (async () => {
      fastify.post('/mint', { config: { idempotent: true }, schema: { response: { 200: response } } }, async () => ({}))
      await fastify.ready()
    })()
    await t.rejects(started, /POST \/mint answers with credentials/)
  }
})
