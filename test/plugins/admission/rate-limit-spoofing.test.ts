import type { FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

const CLIENT = '203.0.113.9'
const PROXY = '10.0.0.2'
const FIRST_PROXY = '10.0.0.1'

// What reaches the service through one or two proxies that each append the address they saw: a
// client's own X-Forwarded-For comes first and is whatever the client wrote.
const chains = {
  'one proxy': (spoofed: string) => ({ remoteAddress: PROXY, headers: { 'x-forwarded-for': `${spoofed}, ${CLIENT}` } }),
  'two proxies': (spoofed: string) => ({ remoteAddress: PROXY, headers: { 'x-forwarded-for': `${spoofed}, ${CLIENT}, ${FIRST_PROXY}` } })
}

const settings: Array<[keyof typeof chains, string]> = [
  ['one proxy', '1'], ['one proxy', '10.0.0.0/8'], ['two proxies', '2'], ['two proxies', `${FIRST_PROXY}, ${PROXY}`]
]

for (const [chain, trust] of settings) {
  t.test(`TRUST_PROXY=${trust}, ${chain}: a fresh spoofed X-Forwarded-For on every request never moves a budget`, async t => {
    const lines: string[] = []
    const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
    const app = await build(t, await testEnv(t, { TRUST_PROXY: trust, RATE_LIMIT_MAX: '4', LOGIN_RATE_LIMIT_MAX: '3', LOG_LEVEL: 'info' }), { stream })
    const user = await register(app, { password: 'the right password' })
    const via = chains[chain]

    const anonymous = []
    for (let i = 0; i < 6; i++) anonymous.push((await app.inject({ url: '/users/me', ...via(`198.51.100.${i}`) })).statusCode)
    t.same(anonymous, [401, 401, 401, 401, 429, 429], 'the client\'s IP budget')

    const guesses = []
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', ...via(`192.0.2.${i}`), payload: { email: user.email, password: 'a wrong guess' } })
      guesses.push(res.statusCode)
    }
    t.same(guesses, [429, 429, 429, 429, 429], 'the client\'s IP budget is spent for login too')
    const login = await app.inject({ method: 'POST', url: '/auth/login', ...chains[chain]('192.0.2.99'), payload: { email: user.email, password: 'the right password' } })
    t.equal(login.statusCode, 429, 'no tokens for the spoofing client')

    const spoofed = lines.join('').match(/"remoteAddress":"(198\.51\.100|192\.0\.2)\.\d+"/g) ?? []
    t.same(spoofed, [], 'the log names the real client, never the spoofed one')
    t.match(lines.join(''), `"remoteAddress":"${CLIENT}"`)
  })
}

t.test('behind a trusted proxy, the login limit per (IP, email) holds whatever X-Forwarded-For the client adds', async t => {
  const app = await build(t, await testEnv(t, { TRUST_PROXY: '1', RATE_LIMIT_MAX: '100', LOGIN_RATE_LIMIT_MAX: '3' }))
  const user = await register(app, { password: 'the right password' })
  const attempt = async (password: string, spoofed: string) =>
    (await app.inject({ method: 'POST', url: '/auth/login', ...chains['one proxy'](spoofed), payload: { email: user.email, password } })).statusCode
  const statuses = []
  for (let i = 0; i < 8; i++) statuses.push(await attempt('a wrong guess', `192.0.2.${i}`))
  t.same(statuses, [401, 401, 401, 429, 429, 429, 429, 429])
  t.equal(await attempt('the right password', '192.0.2.200'), 429, 'even the right password waits for the window')
})

t.test('with proxy addresses as TRUST_PROXY, a client that reaches the service directly cannot name itself', async t => {
  const app = await build(t, await testEnv(t, { TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_MAX: '2' }))
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ url: '/users/me', remoteAddress: CLIENT, headers: { 'x-forwarded-for': `198.51.100.${i}` } })).statusCode)
  t.same(statuses, [401, 401, 429, 429])
})

async function spend (app: FastifyInstance, ip: string, headers: Record<string, string>, count: number): Promise<number[]> {
  const statuses = []
  for (let i = 0; i < count; i++) {
    const payload = { email: `spray-${i}-${ip}@example.com`, password: 'a good password', name: 'Spray' }
    statuses.push((await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: ip, headers, payload })).statusCode)
  }
  return statuses
}

t.test('register, login and refresh are charged to the IP whatever token is sent, a revoked one included', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '4', REFRESH_RATE_LIMIT_MAX: '1' }))
  const user = await register(app)
  const revoked = (await login(app, user)).accessToken
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked) })).statusCode, 204)
  const valid = (await login(app, user)).accessToken

  t.same(await spend(app, '198.51.100.20', bearer(revoked), 6), [201, 201, 201, 201, 429, 429], 'a revoked token earns no budget')
  t.same(await spend(app, '198.51.100.21', bearer(valid), 6), [201, 201, 201, 201, 429, 429], 'nor does a valid one')
  const login20 = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '198.51.100.20', headers: bearer(valid), payload: { email: user.email, password: user.password } })
  t.equal(login20.statusCode, 429, 'login: the IP\'s budget, spent by the registrations')
  const refresh = async () => (await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '198.51.100.23', headers: bearer(valid), payload: { refreshToken: 'x'.repeat(43) } })).statusCode
  t.same([await refresh(), await refresh()], [401, 429], 'refresh: the IP\'s budget of one')

  const me = await app.inject({ url: '/users/me', remoteAddress: '198.51.100.22', headers: bearer(valid) })
  t.equal(me.statusCode, 200)
  t.equal(me.headers['x-ratelimit-remaining'], '2', 'the user was charged only for the logout and this request')
})

t.test('TRUST_PROXY=true in production is warned about at start, naming the fix', async t => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'warn' }
  await build(t, await testEnv(t, { ...production, TRUST_PROXY: 'true' }), { stream })
  t.match(lines.join(''), /TRUST_PROXY=true believes the X-Forwarded-For that clients write/)
  lines.length = 0
  await build(t, await testEnv(t, { ...production, TRUST_PROXY: '1' }), { stream })
  t.notMatch(lines.join(''), /TRUST_PROXY/, 'a hop count is not warned about')
})
