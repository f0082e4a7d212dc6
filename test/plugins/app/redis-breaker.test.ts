import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import redisBreaker, { type RedisBreaker } from '../../../plugins/app/redis-breaker.js'
import { TEST_REDIS_URL } from '../../helper.js'

interface Bare { breaker: RedisBreaker, redis: Redis, logged: () => string[] }

/** The plugin on a bare instance, beside a real client of the suite's Redis (connected unless told). */
async function bare (t: Test, { connect = true } = {}): Promise<Bare> {
  const lines: Array<{ msg: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(async () => await app.close())
  const redis = new Redis(TEST_REDIS_URL(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  if (connect) await redis.connect()
  // The plugin reads only the client's status and its 'ready' event: a plain client stands in for @fastify/redis's.
  await app.register(fp(async fastify => { fastify.decorate('redis', redis as FastifyInstance['redis']) }, { name: 'redis' }))
  await app.register(redisBreaker)
  await app.ready()
  return { breaker: app.redisBreaker, redis, logged: () => lines.map(line => line.msg) }
}

/** Only Date is faked, which the cool-down reads: the client's own timers and sockets stay real. */
function fakeDate (t: Test): FakeTimers.Clock {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  return clock
}

const counting = (): { shared: () => Promise<string>, asked: () => number } => {
  let asked = 0
  return { shared: async () => { asked++; return 'shared' }, asked: () => asked }
}
const local = (): string => 'local'

t.test('while the client is connected the breaker is closed and attempt() answers from Redis', async t => {
  const { breaker, redis } = await bare(t)
  t.equal(breaker.open, false)
  t.equal(await breaker.attempt(async () => await redis.ping(), local), 'PONG')
  t.equal(breaker.switches, 0)
})

t.test('a failed command stands in the local answer and opens the breaker for a 2 s cool-down, which then ends by itself', async t => {
  const { breaker, logged } = await bare(t)
  const clock = fakeDate(t)
  t.equal(await breaker.attempt(async () => { throw new Error('Command timed out') }, local), 'local', 'the local answer stands in')
  const { shared, asked } = counting()
  clock.tick(1999)
  t.equal(await breaker.attempt(shared, local), 'local')
  t.equal(asked(), 0, 'Redis is not asked during the cool-down')
  clock.tick(1)
  t.equal(await breaker.attempt(shared, local), 'shared', 'asked again once the cool-down is over')
  t.same(logged().filter(msg => /^redis /.test(msg)), ['redis unavailable: falling back to per-instance state', 'redis available again: back to shared state'],
    'one line each way, not one per request')
  t.equal(breaker.switches, 2)
})

t.test('a new connection ends the cool-down at once', async t => {
  const { breaker, redis } = await bare(t)
  fakeDate(t)
  breaker.trip(new Error('Connection is closed.'))
  t.equal(breaker.open, true, 'tripped, and the clock stands still')
  redis.disconnect(true)
  await once(redis, 'ready')
  t.equal(breaker.open, false, 'the connection that came ready closed it')
})

t.test('a client that is not connected opens the breaker without a round trip, until it connects', async t => {
  const { breaker, redis, logged } = await bare(t, { connect: false })
  const { shared, asked } = counting()
  for (let i = 0; i < 5; i++) t.equal(await breaker.attempt(shared, local), 'local')
  t.equal(asked(), 0, 'Redis was not asked')
  t.equal(logged().filter(msg => /^redis unavailable/.test(msg)).length, 1, 'said once')
  await redis.connect()
  t.equal(await breaker.attempt(shared, local), 'shared')
})
