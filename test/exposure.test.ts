import t from 'tap'
import { freePort } from '../scripts/servers.js'
import { build, testEnv } from './helper.js'
import { listening, spawnServer } from './process.js'

t.test('DOCS_ENABLED=false: /docs and /docs/json answer 404, and the API is served as before', async t => {
  const app = await build(t, await testEnv(t, { DOCS_ENABLED: 'false' }))
  for (const url of ['/docs', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui.css']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.match(res.json(), { statusCode: 404, error: 'Not Found' }, url)
  }
  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject('/metrics')).statusCode, 200)
})

t.test('METRICS_PORT: the process serves /metrics only on that port, 404 for it on PORT, and exits 0 on SIGTERM', async t => {
  const metricsPort = await freePort()
  const server = await spawnServer(t, { ...await testEnv(t), LOG_LEVEL: 'warn', METRICS_PORT: String(metricsPort) })
  await listening(server)
  const metricsUrl = `http://127.0.0.1:${metricsPort}`

  const onPort = await fetch(`${server.url}/metrics`)
  t.equal(onPort.status, 404, 'GET /metrics on PORT is not found')
  t.match(await onPort.json(), { statusCode: 404, error: 'Not Found' })
  t.equal((await fetch(`${server.url}/readyz`)).status, 200)

  const scrape = await fetch(`${metricsUrl}/metrics`)
  t.equal(scrape.status, 200)
  t.match(scrape.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await scrape.text()
  t.match(text, /pulsewatch_http_request_duration_seconds_count\{method="GET",route="\/readyz",status_code="200"\} 1/, 'the app\'s own registry: it counted the /readyz on PORT')
  t.notMatch(text, /route="\/metrics"/, 'scrapes are not API requests')
  t.equal((await fetch(`${metricsUrl}/healthz`)).status, 404, 'the metrics port serves /metrics alone')

  server.child.kill('SIGTERM')
  t.equal((await server.exited).code, 0, 'exit 0')
  await t.rejects(fetch(`${metricsUrl}/metrics`), 'the metrics port is closed too')
  t.equal(server.stderr(), '', 'nothing on stderr')
})
