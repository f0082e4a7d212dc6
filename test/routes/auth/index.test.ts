import { availableParallelism } from 'node:os'
import t from 'tap'
import { hashing } from '../../../plugins/app/passwords.js'
import { build, twoInstances } from '../../helper.js'
import { login, register } from '../../users.js'

t.test('POST /auth/register creates a user with a lowercased email and never returns the password', async t => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'Ada@Example.COM', password: 'correct horse', name: 'Ada' } })
  t.equal(res.statusCode, 201)
  const user = res.json()
  t.match(user, { email: 'ada@example.com', name: 'Ada', role: 'user', id: /^[0-9a-f-]{36}$/ })
  t.same(Object.keys(user).sort(), ['createdAt', 'email', 'id', 'name', 'role', 'updatedAt'])
  t.notMatch(res.body, /correct horse|scrypt/)
})

t.test('POST /auth/register answers 409 for an email that exists in another case', async t => {
  const app = await build(t)
  await register(app, { email: 'grace@example.com' })
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'GRACE@example.com', password: 'another secret', name: 'G' } })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { statusCode: 409, error: 'Conflict' })
})

t.test('POST /auth/login answers the same 401 for an unknown email and a wrong password', async t => {
  const app = await build(t)
  await register(app, { email: 'linus@example.com', password: 'right password' })
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'linus@example.com', password: 'wrong password' } })
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'wrong password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(unknown.statusCode, 401)
  t.same(wrong.json(), unknown.json())
})

t.test('POST /auth/login returns a bearer pair whose access token carries the contract claims', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  t.match(pair, { tokenType: 'Bearer', expiresIn: 900, accessToken: String, refreshToken: String })
  const claims = app.jwt.decode<Record<string, unknown>>(pair.accessToken)
  t.match(claims, { sub: user.id, role: 'user', jti: String, iat: Number, exp: Number, iss: 'pulsewatch', aud: 'pulsewatch-api' })
  t.equal((claims?.exp as number) - (claims?.iat as number), 900)
  const me = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${pair.accessToken}` } })
  t.equal(me.statusCode, 200)
  t.equal(me.json().id, user.id)
})

t.test('logout on one instance is refused on the other at once, and the deny entry lives exactly as long as the token', async t => {
  const [a, b] = await twoInstances(t)
  const user = await register(a)
  const { accessToken } = await login(a, user)
  const auth = { authorization: `Bearer ${accessToken}` }
  t.equal((await b.inject({ url: '/users/me', headers: auth })).statusCode, 200)

  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: auth })).statusCode, 204)
  const refused = await b.inject({ url: '/users/me', headers: auth })
  t.equal(refused.statusCode, 401)
  t.match(refused.headers['www-authenticate'], /^Bearer/)
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: auth })).statusCode, 401, 'a revoked token cannot log out again')

  const claims = a.jwt.decode<{ jti: string, sub: string, exp: number }>(accessToken)
  const ttl = await a.redis.ttl(`deny:{${claims?.sub}}:jti:${claims?.jti}`)
  t.ok(Math.abs(ttl - ((claims?.exp ?? 0) - Math.floor(Date.now() / 1000))) <= 1, `deny TTL ${ttl} matches exp - now`)
})

t.test('logout also ends the login: its refresh token is refused afterwards', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${pair.accessToken}` } })
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  t.equal(res.statusCode, 401)
})

t.test('logout with another login\'s refresh token in the body revokes that login too', async t => {
  const app = await build(t)
  const user = await register(app)
  const first = await login(app, user)
  const second = await login(app, user)
  const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${first.accessToken}` }, payload: { refreshToken: second.refreshToken } })
  t.equal(res.statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: second.refreshToken } })).statusCode, 401)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${second.accessToken}` } })).statusCode, 401)
})

t.test('logout-all rejects every access and refresh token issued before it, on every instance', async t => {
  const [a, b] = await twoInstances(t)
  const user = await register(a)
  const first = await login(a, user)
  const second = await login(b, user)
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${first.accessToken}` } })).statusCode, 204)
  for (const pair of [first, second]) {
    t.equal((await b.inject({ url: '/users/me', headers: { authorization: `Bearer ${pair.accessToken}` } })).statusCode, 401)
    t.equal((await b.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode, 401)
  }
  const fresh = await login(b, user)
  t.equal((await a.inject({ url: '/users/me', headers: { authorization: `Bearer ${fresh.accessToken}` } })).statusCode, 200, 'a login after the cut-off works, even within the same second')
})

t.test('logout-all is enforced from PostgreSQL when Redis has lost the cut-off', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${pair.accessToken}` } })
  await app.redis.del(`gen:{${user.id}}`)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${pair.accessToken}` } })).statusCode, 401)
})

t.test('refresh rotates: the new pair works and the spent token is refused', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  t.equal(res.statusCode, 200)
  const next = res.json()
  t.not(next.refreshToken, pair.refreshToken)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.accessToken}` } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode, 401)
})

t.test('presenting a spent refresh token revokes the whole login, its newest tokens included', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  const next = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: next.refreshToken } })).statusCode, 401, 'the rotated refresh token is dead')
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.accessToken}` } })).statusCode, 401, 'the rotated access token is dead')
  const other = await login(app, user)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${other.accessToken}` } })).statusCode, 200, 'another login is untouched')
})

t.test('two concurrent refreshes with one token: exactly one succeeds', async t => {
  const [a, b] = await twoInstances(t)
  const user = await register(a)
  const pair = await login(a, user)
  const answers = await Promise.all([a, b, a, b].map(async app => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })))
  t.same(answers.map(r => r.statusCode).sort(), [200, 401, 401, 401])
})

t.test('an expired refresh token is refused', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  await app.pg.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode, 401)
})

t.test('a refresh token is not an access token, nor the reverse', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${pair.refreshToken}` } })).statusCode, 401)
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.accessToken.slice(0, 128) } })
  t.equal(res.statusCode, 401)
})

t.test('passwords are stored as salted Argon2id hashes with their parameters', async t => {
  const app = await build(t)
  await register(app, { email: 'a@example.com', password: 'same password' })
  await register(app, { email: 'b@example.com', password: 'same password' })
  const { rows } = await app.pg.query<{ password_hash: string }>('SELECT password_hash FROM users ORDER BY email')
  t.equal(rows.length, 2)
  for (const row of rows) t.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
  t.not(rows[0]?.password_hash, rows[1]?.password_hash)
})

t.test('no more passwords are hashed at once than there are cores less one (three at most): the rest wait their turn', async t => {
  const app = await build(t)
  const slots = Math.max(1, Math.min(availableParallelism() - 1, 3))
  // Counted before this tick ends, when no hash can have ended.
  const all = Promise.all(Array.from({ length: slots + 2 }, async () => await app.passwords.hash('a password to hash')))
  t.equal(hashing.activeCount, slots, 'hashing')
  t.equal(hashing.pendingCount, 2, 'waiting')
  t.equal(new Set(await all).size, slots + 2, 'every one hashed, each with its own salt')
})
