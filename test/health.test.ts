import t from 'tap'
import { build } from './helper.js'

t.test('GET /healthz answers without touching a dependency', async t => {
  const app = await build(t)
  const res = await app.inject('/healthz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /readyz reports each dependency as ok', async t => {
  const app = await build(t)
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } })
})
