import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { build, privateRedis, testEnv } from '../../helper.js'
import { login, register } from '../../users.js'

const registerFrom = async (app: FastifyInstance, ip: string, i: number) =>
  await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: ip, payload: { email: `r${i}-${ip}@example.com`, password: 'a good password', name: 'R' } })

t.test('POST /auth/register has a budget of its own per IP, exact across two instances, charged beside the default budget', async t => {
  const env = await testEnv(t, { REGISTER_RATE_LIMIT_MAX: '3', REGISTER_RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_MAX: '50' })
  const [a, b] = [await build(t, env), await build(t, env)]
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => await registerFrom(i % 2 === 0 ? a : b, '203.0.113.9', i)))
  t.equal(answers.filter(res => res.statusCode === 201).length, 3, 'three registrations in total')
  const limited = answers.find(res => res.statusCode === 429)
  t.match(limited?.headers, { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0', 'retry-after': /^\d+$/ })
  t.equal((await registerFrom(a, '198.51.100.9', 9)).statusCode, 201, 'another IP has its own')

  const other = await a.inject({ url: '/users/me', remoteAddress: '203.0.113.9' })
  t.equal(other.statusCode, 401)
  t.match(other.headers, { 'x-ratelimit-limit': '50', 'x-ratelimit-remaining': '41', 'ratelimit-policy': '"default";q=50;w=60' }, 'the eight registrations were charged to the default budget too')
  t.equal(limited?.headers['ratelimit-policy'], '"default";q=50;w=60, "POST /auth/register";q=3;w=60')
  const counted = await Promise.all([a, b].map(async app => (await app.metrics.registry.getSingleMetricAsString('pulsewatch_rate_limited_requests_total')).match(/limit="POST \/auth\/register"} (\d+)/)?.[1]))
  t.equal(counted.reduce((sum, n) => sum + Number(n ?? 0), 0), 5, 'the 429s are counted under the route\'s budget')
})

t.test('POST /auth/refresh has a budget of its own, charged to the IP whatever token the request carries', async t => {
  const env = await testEnv(t, { REFRESH_RATE_LIMIT_MAX: '2' })
  const app = await build(t, env)
  const user = await register(app)
  const pair = await login(app, user)
  const refresh = async (refreshToken: string) => await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '203.0.113.10', headers: { authorization: `Bearer ${pair.accessToken}` }, payload: { refreshToken } })
  const first = await refresh(pair.refreshToken)
  t.equal(first.statusCode, 200)
  t.equal((await refresh(first.json().refreshToken)).statusCode, 200)
  const third = await refresh('a'.repeat(43))
  t.equal(third.statusCode, 429, 'the third refresh from the IP is refused before any check')
  t.equal(third.headers.ratelimit, '"POST /auth/refresh";r=0;t=60')
})

t.test('a route budget never loosens the default one: with RATE_LIMIT_MAX spent, registration is refused too, so exactly RATE_LIMIT_MAX requests of a client pass in total', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '4', REGISTER_RATE_LIMIT_MAX: '20' }))
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url: '/users/me', remoteAddress: '203.0.113.11' })).statusCode)
  for (let i = 0; i < 3; i++) statuses.push((await registerFrom(app, '203.0.113.11', i)).statusCode)
  t.same(statuses, [401, 401, 401, 201, 429, 429])
})

t.test('a route limit must be in range: the variables are checked at start like the others', async t => {
  await t.rejects(build(t, await testEnv(t, { REGISTER_RATE_LIMIT_MAX: '0' })), /REGISTER_RATE_LIMIT_MAX/)
  await t.rejects(build(t, await testEnv(t, { REFRESH_RATE_LIMIT_WINDOW_MS: 'soon' })), /REFRESH_RATE_LIMIT_WINDOW_MS/)
})

t.test('Redis stopped: a route budget and the default one are both counted in memory, with the same numbers', async t => {
  const redis = await privateRedis(t)
  const app = await build(t, await testEnv(t, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '4', REGISTER_RATE_LIMIT_MAX: '2' }))
  await redis.stop({ crash: true })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await registerFrom(app, '203.0.113.12', i)).statusCode)
  t.same(statuses, [201, 201, 429], 'the route budget binds first')
  const other = await app.inject({ url: '/users/me', remoteAddress: '203.0.113.12' })
  t.equal(other.statusCode, 401)
  t.equal(other.headers['x-ratelimit-remaining'], '0', 'all three registrations were charged to the default budget too')
  t.equal((await app.inject({ url: '/users/me', remoteAddress: '203.0.113.12' })).statusCode, 429)
})
