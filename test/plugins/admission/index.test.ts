import type { FastifyInstance } from 'fastify'
import { createHmac } from 'node:crypto'
import t from 'tap'
import { build, privateRedis, testEnv, timed, waitFor } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

const get = async (app: FastifyInstance, { ip = '203.0.113.7', headers = {} }: { ip?: string, headers?: Record<string, string> } = {}) =>
  await app.inject({ url: '/users/me', remoteAddress: ip, headers })

const passed = (statuses: number[]): number => statuses.filter(status => status !== 429).length

t.test('three instances on one Redis let exactly RATE_LIMIT_MAX requests of one client through in total', async t => {
  const env = await testEnv(t, { RATE_LIMIT_MAX: '10' })
  const apps = await Promise.all([1, 2, 3].map(async () => await build(t, env)))
  const answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => await get(apps[i % 3]!)))
  t.equal(passed(answers.map(res => res.statusCode)), 10)
  const other = await get(apps[0]!, { ip: '198.51.100.1' })
  t.equal(other.statusCode, 401, 'another client has a budget of its own')
  t.equal(other.headers['x-ratelimit-remaining'], '9')
})

t.test('an authenticated user has one budget across IPs and instances', async t => {
  const env = await testEnv(t, { RATE_LIMIT_MAX: '6' })
  const [a, b] = [await build(t, env), await build(t, env)]
  const user = await register(a, {})
  const { accessToken } = await login(a, user)
  const statuses = []
  for (let i = 0; i < 8; i++) statuses.push((await get(i % 2 === 0 ? a : b, { ip: `192.0.2.${i}`, headers: bearer(accessToken) })).statusCode)
  t.same(statuses, [200, 200, 200, 200, 200, 200, 429, 429], 'register and login were charged to 127.0.0.1; these eight to the user alone')
})

t.test('answers carry the limit headers; a 429 adds retry-after, the IETF fields and the contract error shape', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '30000' }))
  const first = await get(app)
  t.match(first.headers, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': '30', 'ratelimit-policy': '"default";q=2;w=30', ratelimit: '"default";r=1;t=30' })
  await get(app)
  const limited = await get(app)
  t.equal(limited.statusCode, 429)
  t.match(limited.headers, { 'x-ratelimit-remaining': '0', 'retry-after': /^(29|30)$/ })
  t.same(Object.keys(limited.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(limited.json(), { statusCode: 429, error: 'Too Many Requests', message: /^Rate limit exceeded/, code: 'PW_RATE_LIMITED' })
  t.notOk((await app.inject('/healthz')).headers['x-ratelimit-limit'], '/healthz is not limited')
  t.equal((await app.inject({ url: '/readyz', remoteAddress: '203.0.113.7' })).statusCode, 200, '/readyz is not limited')
})

t.test('the window resets', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '700' }))
  const began = performance.now()
  const statuses = [(await get(app)).statusCode, (await get(app)).statusCode, (await get(app)).statusCode]
  t.same(statuses, [401, 401, 429])
  // The polls are requests too: asking while limited must not push the end of the window back.
  await waitFor(async () => (await get(app)).statusCode === 401, { what: 'the 700 ms window to end', timeoutMs: 5000 })
  const ms = performance.now() - began
  // The window is 700 ms; 2 s leaves a loaded machine its margin.
  t.ok(ms < 2000, `a request is let through again ${Math.round(ms)} ms after the window began`)
})

t.test('a forged token carrying a victim\'s sub, or an expired one, is charged to the caller\'s IP', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '5' }))
  const victim = await register(app)
  const { accessToken } = await login(app, victim)
  const forge = (payload: Record<string, unknown>, key: string): string => {
    const input = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
  }
  const claims = app.jwt.decode<Record<string, number | string>>(accessToken)!
  const forged = forge({ ...claims, jti: crypto.randomUUID() }, 'not the secret')
  const expired = forge({ ...claims, exp: 1_000_000_000 }, 'pulsewatch-development-secret-not-for-production')
  for (let i = 0; i < 6; i++) await get(app, { ip: '198.51.100.66', headers: bearer(i % 2 === 0 ? forged : expired) })
  t.equal((await get(app, { ip: '198.51.100.66', headers: bearer(forged) })).statusCode, 429, 'the attacker\'s IP is exhausted')
  const own = await get(app, { ip: '198.51.100.99', headers: bearer(accessToken) })
  t.equal(own.statusCode, 200)
  t.equal(own.headers['x-ratelimit-remaining'], '4', 'the victim\'s budget is untouched')
})

t.test('a revoked token whose signature and expiry verify is refused with 401 and charged to its user, not to the IP', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '5' }))
  const user = await register(app)
  const revoked = (await login(app, user)).accessToken
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked) })).statusCode, 204)
  const refused = []
  for (let i = 0; i < 3; i++) refused.push((await get(app, { ip: '198.51.100.77', headers: bearer(revoked) })).statusCode)
  t.same(refused, [401, 401, 401])
  const fresh = (await login(app, user)).accessToken
  // The logout and the three refused requests were the user's: one left of five.
  t.equal((await get(app, { ip: '198.51.100.78', headers: bearer(fresh) })).headers['x-ratelimit-remaining'], '0')
  t.equal((await get(app, { ip: '198.51.100.77' })).headers['x-ratelimit-remaining'], '4', 'the IP was charged only for this request')
})

t.test('with TRUST_PROXY=false X-Forwarded-For is ignored; with true, it names the client', async t => {
  const closed = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '3' }))
  const spoofed = []
  for (let i = 0; i < 5; i++) spoofed.push((await get(closed, { headers: { 'x-forwarded-for': `10.0.0.${i}` } })).statusCode)
  t.equal(passed(spoofed), 3, 'no escape by X-Forwarded-For')

  const proxied = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '3', TRUST_PROXY: 'true' }))
  const distinct = []
  for (let i = 0; i < 5; i++) distinct.push((await get(proxied, { headers: { 'x-forwarded-for': `10.0.0.${i}` } })).statusCode)
  t.equal(passed(distinct), 5, 'behind a trusted proxy each forwarded client has its own budget')
})

t.test('IPv6 clients are grouped by /64', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '2' }))
  await get(app, { ip: '2001:db8:1:2::1' })
  await get(app, { ip: '2001:db8:1:2:ffff::9' })
  t.equal((await get(app, { ip: '2001:db8:1:2::77' })).statusCode, 429, 'one /64, one budget')
  t.equal((await get(app, { ip: '2001:db8:1:3::1' })).statusCode, 401, 'the next /64 is another client')
})

t.test('the login limit counts failed attempts per (IP, email), independently of the global limit', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_RATE_LIMIT_MAX: '3', RATE_LIMIT_MAX: '50' }))
  const user = await register(app, { password: 'the right password' })
  const attempt = async (password: string, { ip = '203.0.113.5', email = user.email } = {}) =>
    await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { email, password } })

  for (let i = 0; i < 4; i++) t.equal((await attempt('the right password')).statusCode, 200, 'successful logins do not count')
  for (let i = 0; i < 3; i++) t.equal((await attempt('wrong password')).statusCode, 401)
  const blocked = await attempt('the right password')
  t.equal(blocked.statusCode, 429, 'blocked even with the right password')
  t.match(blocked.headers['retry-after'], /^\d+$/)
  t.ok(Number(blocked.headers['x-ratelimit-remaining']) > 0, 'while the global budget is not spent')
  t.equal((await attempt('the right password', { email: user.email.toUpperCase() })).statusCode, 429, 'the email is lowercased')
  t.equal((await attempt('the right password', { ip: '203.0.113.6' })).statusCode, 200, 'another IP is another pair')
  t.equal((await attempt('wrong password', { email: 'other@example.com' })).statusCode, 401, 'another email is another pair')
})

t.test('concurrent wrong guesses cannot overshoot the login limit', async t => {
  const app = await build(t, await testEnv(t, { LOGIN_RATE_LIMIT_MAX: '3' }))
  const user = await register(app)
  const answers = await Promise.all(Array.from({ length: 10 }, async () =>
    await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'guess guess' } })))
  t.equal(answers.filter(res => res.statusCode === 401).length, 3)
  t.equal(answers.filter(res => res.statusCode === 429).length, 7)
})

t.test('Redis stopped: limits hold per instance in memory without waiting on Redis, then counting resumes in Redis', async t => {
  const redis = await privateRedis(t)
  const env = await testEnv(t, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '4', REVOCATION_FAIL_MODE: 'open' })
  const [a, b] = [await build(t, env), await build(t, env)]
  await get(a)
  await redis.stop({ crash: true })

  const during: number[] = []
  let slowest = 0
  for (const app of [a, a, a, a, a, b, b, b, b, b]) {
    const [res, ms] = await timed(async () => await get(app))
    during.push(res.statusCode)
    slowest = Math.max(slowest, ms)
  }
  t.same(during, [401, 401, 401, 401, 429, 401, 401, 401, 401, 429], 'each instance limits on its own, with the same numbers')
  // Without a connection no command is tried: a few ms; 250 leaves a loaded machine its margin.
  t.ok(slowest < 250, `no request waited on the dead Redis (slowest ${Math.round(slowest)} ms)`)

  await redis.start()
  await waitFor(() => a.redis.status === 'ready' && b.redis.status === 'ready', { what: 'both instances to reconnect to Redis' })
  const after = await Promise.all(Array.from({ length: 8 }, async (_, i) => await get(i % 2 === 0 ? a : b, { ip: '192.0.2.200' })))
  t.equal(passed(after.map(res => res.statusCode)), 4, 'exact across instances again')
})

t.test('every key the service writes carries a TTL', async t => {
  const app = await build(t)
  const user = await register(app)
  const pair = await login(app, user)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'wrong password' } })
  await app.inject({ url: '/users/me', headers: bearer(pair.accessToken) })
  const second = await login(app, user)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(second.accessToken) })
  const prefix = app.config.REDIS_KEY_PREFIX
  const keys: string[] = []
  for await (const batch of app.redis.scanStream({ match: `${prefix}*` })) keys.push(...(batch as string[]))
  t.ok(keys.length >= 5, `keys written: ${keys.length}`)
  for (const key of keys) {
    const ttl = await app.redis.pttl(key.slice(prefix.length))
    t.ok(ttl > 0, `${key} expires (${ttl} ms)`)
  }
})
