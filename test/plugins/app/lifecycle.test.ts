import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import { syncBuiltinESMExports } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { loadConfig } from '../../../config.js'
import lifecycle from '../../../plugins/app/lifecycle.js'

async function bare (t: Test, delayMs: number, { listen = true } = {}): Promise<FastifyInstance> {
  const app = Fastify()
  app.decorate('config', loadConfig({ NODE_ENV: 'test', SHUTDOWN_DELAY_MS: String(delayMs) }))
  await app.register(lifecycle)
  if (listen) await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => await app.close())
  return app
}

/**
 * A fake setTimeout, also behind `import { setTimeout } from 'node:timers/promises'`, with which the
 * plugin waits: syncBuiltinESMExports carries the fake (and later the real one) into ES module imports.
 */
function fakeTimers (t: Test): FakeTimers.Clock {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
  syncBuiltinESMExports()
  t.teardown(async () => {
    // A wait still pending (a failed test's) ends now, or the instance's own teardown would wait on it forever.
    await clock.runAllAsync()
    clock.uninstall()
    syncBuiltinESMExports()
  })
  return clock
}

// Taken now, before any fake: the import itself is a live binding that syncBuiltinESMExports updates.
const realSleep = sleep

/** Whether `promise` settles within `ms` of real time. */
async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  const late = new AbortController()
  try {
    return await Promise.race([promise.then(() => true), realSleep(ms, false, { signal: late.signal })])
  } finally {
    late.abort()
  }
}

t.test('close() while listening drains for SHUTDOWN_DELAY_MS: draining at once, still serving, closed only when the delay is over', async t => {
  const app = await bare(t, 5000)
  t.equal(app.lifecycle.draining, false)
  const clock = fakeTimers(t)
  let closed = false
  const closing = app.close().then(() => { closed = true })
  await clock.tickAsync(0)
  t.equal(app.lifecycle.draining, true, 'draining from the moment close begins')
  await clock.tickAsync(4999)
  t.equal(closed, false, 'not closed a millisecond before the delay is over')
  t.equal(app.server.listening, true, 'and still listening')
  await clock.tickAsync(1)
  t.ok(await settlesWithin(closing, 5000), 'closed when it is over')
  t.equal(app.server.listening, false)
})

t.test('close() of an instance that never listened does not wait: there is no traffic to drain', async t => {
  const app = await bare(t, 60_000, { listen: false })
  fakeTimers(t)
  t.ok(await settlesWithin(app.close(), 5000), 'closed while the clock stood still')
  t.equal(app.lifecycle.draining, true)
})

t.test('SHUTDOWN_DELAY_MS=0 closes at once', async t => {
  const app = await bare(t, 0)
  const clock = fakeTimers(t)
  const closing = app.close()
  await clock.tickAsync(0)
  t.ok(await settlesWithin(closing, 5000), 'closed with no time passing')
})
