import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

t.test('an access token alone cannot take an account over: a new email or password needs the current password', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_RATE_LIMIT_MAX: '100', RATE_LIMIT_MAX: '1000' }))
  const victim = await register(app, { password: 'the victim password' })
  const stolen = bearer((await login(app, victim)).accessToken)
  const patch = async (payload: object) => await app.inject({ method: 'PATCH', url: `/users/${victim.id}`, headers: stolen, payload })

  const takeover = { email: 'attacker@example.com', password: 'the attacker password' }
  const missing = await patch(takeover)
  t.equal(missing.statusCode, 400)
  t.match(missing.json().message, /currentPassword/)
  for (const payload of [{ email: takeover.email }, { password: takeover.password }]) {
    const wrong = await patch({ ...payload, currentPassword: 'a guess' })
    t.equal(wrong.statusCode, 401, `${Object.keys(payload)[0]} with a wrong current password`)
    t.match(wrong.headers['www-authenticate'], /error="insufficient_user_authentication"/)
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: takeover })).statusCode, 401, 'the attacker\'s credentials never took')
  t.equal((await app.inject({ url: '/users/me', headers: stolen })).json().email, victim.email)

  t.equal((await patch({ name: 'Renamed' })).statusCode, 200, 'a name needs no password')
  const changed = await patch({ email: 'new-address@example.com', currentPassword: victim.password })
  t.equal(changed.statusCode, 200, 'the owner, with its password, may')
  t.equal(changed.json().email, 'new-address@example.com')
})

t.test('wrong current passwords count against the login limit, whose 429 then refuses even the right one', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '1000' }))
  const user = await register(app)
  const auth = bearer((await login(app, user)).accessToken)
  const statuses = []
  for (let i = 0; i < 4; i++) {
    statuses.push((await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth, payload: { password: 'a new password', currentPassword: `guess ${i}` } })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 429])
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })).statusCode, 429, 'the same budget as logins')
})

t.test('an admin changes another user\'s password without one, and its own only with its own', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const [user, boss] = [await register(app), await register(app)]
  const admin = bearer((await app.tokens.issue({ id: boss.id, role: 'admin', generation: 0 })).accessToken)
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin, payload: { password: 'set by the admin' } })).statusCode, 200)
  await login(app, { email: user.email, password: 'set by the admin' })
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${boss.id}`, headers: admin, payload: { password: 'a new admin password' } })).statusCode, 400)
})
