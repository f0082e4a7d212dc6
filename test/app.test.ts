import { Writable } from 'node:stream'
import t from 'tap'
import { UUID_PATTERN } from '../schemas/common.js'
import { build } from './helper.js'
import { bearer, login, register } from './users.js'

const valid = { email: 'ok@example.com', password: 'long enough', name: 'Ok' }
const UUID = new RegExp(UUID_PATTERN)

t.test('bad input gets a clear 4xx in the contract shape', async t => {
  const app = await build(t)
  const post = async (payload: string, contentType = 'application/json') =>
    await app.inject({ method: 'POST', url: '/auth/register', payload, headers: { 'content-type': contentType } })
  const cases: Array<[string, Promise<{ statusCode: number, body: string }>, number]> = [
    ['malformed JSON', post('{"email": "a@b.c",'), 400],
    ['an empty JSON body', post(''), 400],
    ['a JSON array', post('[]'), 400],
    ['a missing field', post(JSON.stringify({ email: valid.email, password: valid.password })), 400],
    ['a number where a string is expected', post(JSON.stringify({ ...valid, name: 42 })), 400],
    ['a boolean where a string is expected', post(JSON.stringify({ ...valid, password: true })), 400],
    ['an unknown field', post(JSON.stringify({ ...valid, role: 'admin' })), 400],
    ['an invalid email', post(JSON.stringify({ ...valid, email: 'not-an-email' })), 400],
    ['a password under 8 characters', post(JSON.stringify({ ...valid, password: 'short' })), 400],
    ['a password over 128 characters', post(JSON.stringify({ ...valid, password: 'x'.repeat(129) })), 400],
    ['an empty name', post(JSON.stringify({ ...valid, name: '' })), 400],
    ['a name over 100 characters', post(JSON.stringify({ ...valid, name: 'x'.repeat(101) })), 400],
    ['a __proto__ key', post('{"__proto__": {"x": 1}, "email": "a@b.co", "password": "long enough", "name": "x"}'), 400],
    ['a body over 1 MiB', post(JSON.stringify({ ...valid, name: 'x'.repeat(1024 * 1024) })), 413],
    ['an unsupported content type', post('email=a', 'application/x-www-form-urlencoded'), 415],
    ['text/plain', post(JSON.stringify(valid), 'text/plain'), 415]
  ]
  for (const [name, pending, status] of cases) {
    const res = await pending
    t.equal(res.statusCode, status, name)
    const body = JSON.parse(res.body)
    t.match(body, { statusCode: status, error: String, message: String }, `${name}: error shape`)
    t.notMatch(res.body, /at .*\.(ts|js):\d+|node_modules/, `${name}: no stack`)
  }
  const { rows } = await app.pg.query('SELECT count(*)::int AS n FROM users')
  t.equal(rows[0].n, 0, 'nothing was created by any bad request')
})

t.test('an unknown route answers 404 in the contract shape', async t => {
  const app = await build(t)
  const res = await app.inject('/nope')
  t.equal(res.statusCode, 404)
  t.match(res.json(), { statusCode: 404, error: 'Not Found', message: String })
})

t.test('our errors carry their stable code, Fastify\'s keep theirs', async t => {
  const app = await build(t)
  const pair = await login(app, await register(app))
  const cursor = Buffer.from('["0","not-a-uuid"]').toString('base64url')
  const ours = await app.inject({ url: `/users?cursor=${cursor}`, headers: bearer(pair.accessToken) })
  t.same(ours.json(), { statusCode: 400, error: 'Bad Request', message: 'querystring/cursor is not a cursor this service issued', code: 'PW_INVALID_CURSOR' })
  const fastify = await app.inject({ method: 'POST', url: '/auth/register', payload: { ...valid, name: 42 } })
  t.match(fastify.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION' })
})

t.test('an unexpected server error answers a generic 500 with no SQL, stack or internal name', async t => {
  const app = await build(t)
  const user = await register(app)
  await app.pg.query('ALTER TABLE users RENAME COLUMN password_hash TO secret_column')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
})

t.test('x-request-id: a well-formed incoming id is kept, a malformed one replaced, and every answer has one', async t => {
  const app = await build(t)
  const kept = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123.def:4' } })
  t.equal(kept.headers['x-request-id'], 'abc-123.def:4')
  for (const bad of ['has space', 'x'.repeat(200), '<script>', '']) {
    const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], UUID, `replaced: ${JSON.stringify(bad.slice(0, 12))}`)
  }
  const notFound = await app.inject('/nope')
  t.match(notFound.headers['x-request-id'], UUID)
  const invalid = await app.inject({ method: 'POST', url: '/auth/register', payload: '{', headers: { 'content-type': 'application/json' } })
  t.match(invalid.headers['x-request-id'], UUID)
})

t.test('logs never contain passwords, tokens, the JWT secret or authorization headers', async t => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const secret = 'a-jwt-secret-long-enough-for-production-use-0123456789'
  const { testEnv } = await import('./helper.js')
  const app = await build(t, await testEnv(t, { LOG_LEVEL: 'trace', JWT_SECRET: secret }), { stream })
  const user = await register(app, { password: 'my very secret password' })
  const pair = await login(app, user)
  await app.inject({ url: '/users/me', headers: bearer(pair.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'wrong password!' } })
  await app.inject({ url: '/users/me', headers: { ...bearer(pair.accessToken), cookie: 'session=s3cr3t' } })

  const log = lines.join('')
  t.ok(lines.length > 10, 'requests were logged')
  for (const secretValue of ['my very secret password', 'wrong password!', pair.accessToken, pair.refreshToken, secret, 's3cr3t']) {
    t.notOk(log.includes(secretValue), `absent from logs: ${secretValue.slice(0, 10)}…`)
  }
})

t.test('a request that logs writes its id with the line; a request that does not log makes no child logger', async t => {
  const lines: Array<{ level: number, msg: string, reqId?: string }> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const { testEnv } = await import('./helper.js')
  const app = await build(t, await testEnv(t, { LOG_LEVEL: 'warn' }), { stream })
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  const children = t.capture(app.log, 'child', app.log.child)
  await app.inject({ url: '/users/me', headers: bearer(pair.accessToken) })
  t.equal(children().length, 0, 'a request that wrote nothing made no child logger')
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  t.equal(reuse.statusCode, 401)
  t.equal(children().length, 1, 'the one that warned made one')
  const warning = lines.find(line => line.msg === 'refresh token reuse: login revoked')
  t.equal(warning?.reqId, reuse.headers['x-request-id'], 'the warning carries the id the client was given')
  t.equal(lines.filter(line => line.level < 40).length, 0, 'nothing below the configured level')
})
