import Fastify from 'fastify'
import t from 'tap'
import { createBudget, enforce, normalizeIP, routeBudget } from '../../../plugins/admission/rate-limit.js'
import errors from '../../../plugins/app/errors.js'

t.test('a client\'s budget is named by its IPv4 address, or by its IPv6 /64', async t => {
  t.equal(normalizeIP('203.0.113.7'), '203.0.113.7')
  t.equal(normalizeIP('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4-mapped address is the IPv4 client')
  t.equal(normalizeIP('2001:db8:1:2:aaaa::1'), normalizeIP('2001:DB8:1:2:bbbb::2'), 'one /64, one budget, whatever the spelling')
  t.not(normalizeIP('2001:db8:1:2::1'), normalizeIP('2001:db8:1:3::1'))
  t.equal(normalizeIP(undefined), 'unknown', 'a request whose socket is gone still has a budget')
})

t.test('a route gets a budget of its own only from an object rateLimit', async t => {
  t.equal(routeBudget({ method: 'GET', url: '/a', handler: async () => null }), undefined)
  t.equal(routeBudget({ method: 'GET', url: '/a', config: { rateLimit: false }, handler: async () => null }), undefined)
  t.same(routeBudget({ method: 'POST', url: '/auth/register', config: { rateLimit: { max: 3, timeWindow: 1500 } }, handler: async () => null }),
    { name: 'POST /auth/register', max: 3, windowMs: 1500, policy: '"POST /auth/register";q=3;w=2' })
})

t.test('enforce sends the budget\'s headers, and over the limit a 429 in the contract\'s shape with retry-after', async t => {
  const app = Fastify()
  await app.register(errors)
  const budget = createBudget('default', { max: 2, timeWindow: 10_000 })
  const limited: string[] = []
  app.get('/:current', async (request, reply) => {
    enforce(budget, { current: Number((request.params as { current: string }).current), ttl: 4200 }, reply, ({ name }) => limited.push(name))
    return 'ok'
  })
  const within = await app.inject('/2')
  t.equal(within.statusCode, 200)
  t.match(within.headers, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '5', ratelimit: '"default";r=0;t=5', 'ratelimit-policy': '"default";q=2;w=10' })
  t.notOk(within.headers['retry-after'])
  const over = await app.inject('/3')
  t.equal(over.statusCode, 429)
  t.match(over.headers, { 'retry-after': '5', 'x-ratelimit-remaining': '0' })
  t.match(over.json(), { statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded, retry in 5 seconds' })
  t.same(limited, ['default'])
})
