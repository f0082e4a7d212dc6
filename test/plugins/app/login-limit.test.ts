import t from 'tap'
import { build, testEnv, waitFor } from '../../helper.js'
import { parsePrometheus, valueOf } from '../../prometheus.js'
import { register } from '../../users.js'

const attempt = async (app: Awaited<ReturnType<typeof build>>, ip: string, email: string, password: string) =>
  await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { email, password } })

t.test('failed logins from as many addresses as attempts slow the account down; its usual address still gets in', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_ACCOUNT_MAX: '5', LOGIN_RATE_LIMIT_MAX: '5', RATE_LIMIT_MAX: '1000' }))
  const user = await register(app, { password: 'the right password' })
  t.equal((await attempt(app, '192.0.2.1', user.email, user.password)).statusCode, 200, 'the owner logs in from its usual address')

  const botnet = []
  for (let i = 0; i < 8; i++) botnet.push((await attempt(app, `198.51.100.${i}`, user.email.toUpperCase(), 'a wrong guess')).statusCode)
  t.same(botnet, [401, 401, 401, 401, 401, 429, 429, 429], 'one guess per address, yet the account budget is spent')
  const refused = await attempt(app, '203.0.113.77', user.email, user.password)
  t.equal(refused.statusCode, 429, 'a new address waits, even with the right password')
  const retry = Number(refused.headers['retry-after'])
  t.ok(retry > 0 && retry <= 300, `for the rest of the window at most (${retry} s)`)
  t.equal((await attempt(app, '192.0.2.1', user.email, user.password)).statusCode, 200, 'the address that logged in before is not locked out')
  t.equal((await attempt(app, '198.51.100.99', 'someone-else@example.com', 'a wrong guess')).statusCode, 401, 'another account is untouched')
  const metrics = parsePrometheus((await app.inject('/metrics')).body)
  t.equal(valueOf(metrics, 'pulsewatch_rate_limited_requests_total', { limit: 'account' }), 4, 'each refusal counted under limit="account"')
})

t.test('the account window ends: then a new address may try again', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_ACCOUNT_MAX: '2', LOGIN_ACCOUNT_WINDOW_MS: '1000', RATE_LIMIT_MAX: '1000' }))
  const user = await register(app)
  for (let i = 0; i < 2; i++) await attempt(app, `198.51.100.${i}`, user.email, 'a wrong guess')
  t.equal((await attempt(app, '198.51.100.50', user.email, user.password)).statusCode, 429)
  const ttl = await app.redis.pttl(`login:account:${user.email}`)
  t.ok(ttl > 0 && ttl <= 1000, `the lock expires with its window (${ttl} ms)`)
  await waitFor(async () => await app.redis.exists(`login:account:${user.email}`) === 0, { what: 'the account lock to expire' })
  t.equal((await attempt(app, '198.51.100.51', user.email, user.password)).statusCode, 200)
})
