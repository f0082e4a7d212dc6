import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { withoutTapLoader } from '../../process.js'
import { bearer, login, register } from '../../users.js'

t.test('PATCH and DELETE are for the user or an admin: 403 for anyone else', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const owner = await register(app)
  const other = await register(app)
  const { accessToken } = await login(app, other)
  const patch = await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: bearer(accessToken), payload: { name: 'Mallory' } })
  t.equal(patch.statusCode, 403)
  t.match(patch.json(), { statusCode: 403, error: 'Forbidden' })
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${owner.id}`, headers: bearer(accessToken) })).statusCode, 403)

  await promisify(execFile)(...withoutTapLoader('npm', ['run', '--silent', 'user:create-admin', '--', '--email', other.email, '--promote-existing']), { env: { ...process.env, ...env, ADMIN_PASSWORD: other.password } })
  const admin = await login(app, other)
  t.equal(app.jwt.decode<{ role: string }>(admin.accessToken)?.role, 'admin', 'npm run user:create-admin made the user an admin')
  const renamed = await app.inject({ method: 'PATCH', url: `/users/${owner.id}`, headers: bearer(admin.accessToken), payload: { name: 'Renamed by admin' } })
  t.equal(renamed.statusCode, 200)
  t.equal(renamed.json().name, 'Renamed by admin')
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${owner.id}`, headers: bearer(admin.accessToken) })).statusCode, 204)
})

t.test('PATCH validates its input: no field, unknown field, bad id, taken email', async t => {
  const app = await build(t)
  const user = await register(app)
  const taken = await register(app)
  const auth = bearer((await login(app, user)).accessToken)
  const patch = async (payload: unknown, id = user.id) => await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: auth, payload: payload as object })
  t.equal((await patch({})).statusCode, 400, 'no field')
  t.equal((await patch({ role: 'admin' })).statusCode, 400, 'role cannot be patched')
  t.equal((await patch({ name: 7 })).statusCode, 400, 'a number is not a name')
  t.equal((await patch({ name: 'x' }, 'not-a-uuid')).statusCode, 400, 'a bad id')
  t.equal((await patch({ currentPassword: user.password })).statusCode, 400, 'a current password alone changes nothing')
  t.equal((await patch({ email: taken.email.toUpperCase(), currentPassword: user.password })).statusCode, 409, 'an email another user has')
  const changed = await patch({ email: 'New.Address@Example.com', currentPassword: user.password })
  t.equal(changed.statusCode, 200)
  t.equal(changed.json().email, 'new.address@example.com', 'stored lowercased')
  t.ok(changed.json().updatedAt > changed.json().createdAt)
})

t.test('a new password refuses every earlier token and the old password', async t => {
  const app = await build(t)
  const user = await register(app)
  const first = await login(app, user)
  const res = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: bearer(first.accessToken), payload: { password: 'a brand new password', currentPassword: user.password } })
  t.equal(res.statusCode, 200)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(first.accessToken) })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })).statusCode, 401)
  await login(app, { email: user.email, password: 'a brand new password' })
})

t.test('DELETE revokes the user\'s tokens and the user is gone everywhere', async t => {
  const env = await testEnv(t)
  const [a, b] = [await build(t, env), await build(t, env)]
  const user = await register(a)
  const pair = await login(a, user)
  const reader = bearer((await login(a, await register(a))).accessToken)
  t.equal((await b.inject({ url: `/users/${user.id}`, headers: reader })).statusCode, 200)
  t.equal((await a.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: bearer(pair.accessToken) })).statusCode, 204)
  t.equal((await b.inject({ url: `/users/${user.id}`, headers: reader })).statusCode, 404, 'the other instance forgets the user at once')
  t.equal((await b.inject({ url: '/users/me', headers: bearer(pair.accessToken) })).statusCode, 401)
  t.equal((await b.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode, 401)
  t.equal((await a.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: reader })).statusCode, 403, 'another user still may not')
})

t.test('GET /users validates limit and cursor', async t => {
  const app = await build(t)
  const auth = bearer((await login(app, await register(app))).accessToken)
  for (const query of ['limit=0', 'limit=101', 'limit=ten', 'limit=2.5', 'cursor=', 'cursor=%24%24%24', 'cursor=bm90LWpzb24', `cursor=${Buffer.from('["x","y"]').toString('base64url')}`, 'extra=1']) {
    const res = await app.inject({ url: `/users?${query}`, headers: auth })
    t.equal(res.statusCode, 400, query)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request' }, query)
  }
  t.equal((await app.inject({ url: '/users?limit=20', headers: auth })).statusCode, 200, 'query strings are coerced as usual')
  t.equal((await app.inject({ url: '/users', headers: {} })).statusCode, 401)
})
