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
  t.equal(routeBudget({ method: 'HEAD', url: '/a', config: { rateLimit: { max: 3, timeWindow: 1000 } }, handler: async () => null })?.name, 'GET /a',
    'the HEAD route Fastify adds for a GET shares its budget')
})

t.test('with the default and a route budget, the headers speak of the one that binds, and either one spent is a 429', async t => {
  const app = Fastify()
  await app.register(errors)
  const wide = createBudget('default', { max: 100, timeWindow: 60_000 })
  const narrow = createBudget('POST /x', { max: 3, timeWindow: 60_000 })
  app.get('/:wide/:narrow', async (request, reply) => {
    const { wide: w, narrow: n } = request.params as { wide: string, narrow: string }
    enforce([{ budget: wide, count: { current: Number(w), ttl: 30_000 } }, { budget: narrow, count: { current: Number(n), ttl: 50_000 } }], reply, () => {})
    return 'ok'
  })
  const first = await app.inject('/1/1')
  t.match(first.headers, { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '50', ratelimit: '"POST /x";r=2;t=50' })
  t.equal(first.headers['ratelimit-policy'], '"default";q=100;w=60, "POST /x";q=3;w=60', 'both policies')
  t.equal((await app.inject('/100/3')).statusCode, 200, 'both at their limit')
  const wideSpent = await app.inject('/101/2')
  t.equal(wideSpent.statusCode, 429, 'the default budget spent')
  t.match(wideSpent.headers, { 'x-ratelimit-limit': '100', 'retry-after': '30' })
  t.equal((await app.inject('/5/4')).statusCode, 429, 'the route budget spent')
})

t.test('enforce sends the budget\'s headers, and over the limit a 429 in the contract\'s shape with retry-after', async t => {
  const app = Fastify()
  await app.register(errors)
  const budget = createBudget('default', { max: 2, timeWindow: 10_000 })
  const limited: string[] = []
  app.get('/:current', async (request, reply) => {
    enforce([{ budget, count: { current: Number((request.params as { current: string }).current), ttl: 4200 } }], reply, ({ name }) => limited.push(name))
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
