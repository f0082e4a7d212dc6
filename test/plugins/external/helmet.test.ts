import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

const API_CSP = "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'"
const EXPECTED = {
  'content-security-policy': API_CSP,
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'x-permitted-cross-domain-policies': 'none'
}
// Headers for HTML documents in old browsers, left out on purpose; Fastify sends no X-Powered-By.
const ABSENT = ['x-powered-by', 'x-xss-protection', 'x-dns-prefetch-control', 'x-download-options', 'origin-agent-cluster', 'cross-origin-embedder-policy']

async function answer (app: FastifyInstance, options: InjectOptions): Promise<{ status: number, headers: Record<string, unknown> }> {
  const res = await app.inject({ remoteAddress: '192.0.2.20', ...options })
  return { status: res.statusCode, headers: res.headers }
}

t.test('every answer, success or error, carries the security headers of a JSON API and Cache-Control: no-store', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '3' }))
  const json = { 'content-type': 'application/json' }
  const answers = {
    'a JSON answer': await answer(app, { url: '/healthz' }),
    'a 404': await answer(app, { url: '/no/such/route' }),
    'a 400 from the body parser': await answer(app, { method: 'POST', url: '/auth/login', headers: json, payload: '{"unterminated' }),
    'a 401': await answer(app, { url: '/users/me' }),
    'a 429': await answer(app, { url: '/users/me' }),
    'the metrics': await answer(app, { url: '/metrics' })
  }
  t.same(Object.values(answers).map(a => a.status), [200, 404, 400, 401, 429, 200])
  for (const [name, { headers }] of Object.entries(answers)) {
    const expected = { ...EXPECTED, 'cache-control': 'no-store' }
    t.same(Object.fromEntries(Object.keys(expected).map(header => [header, headers[header]])), expected, name)
    t.same(ABSENT.filter(header => header in headers), [], `${name}: none of the document-only headers`)
  }
})

t.test('token answers (login, refresh) carry Cache-Control: no-store', async t => {
  const app = await build(t)
  const user = await register(app)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store', 'login')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: res.json().refreshToken } })
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.headers['cache-control'], 'no-store', 'refresh')
  const me = await app.inject({ url: '/users/me', headers: bearer((await login(app, user)).accessToken) })
  t.equal(me.headers['cache-control'], 'no-store', 'a personal answer')
})

t.test('a route that sets its own Cache-Control keeps it: the static files of /docs stay cacheable', async t => {
  const app = await build(t)
  const css = await app.inject('/docs/static/swagger-ui.css')
  t.equal(css.statusCode, 200)
  t.match(css.headers['cache-control'], /^public, max-age=\d+$/)
  t.ok(css.headers.etag, 'revalidated with an ETag')
  t.match(css.headers, { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY' })
})

t.test('/docs is served with a CSP of its own, for its scripts, styles and calls to this origin only', async t => {
  const app = await build(t)
  for (const url of ['/docs', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    const csp = String(res.headers['content-security-policy'])
    t.not(csp, API_CSP, `${url}: not the API's`)
    const directives = Object.fromEntries(csp.split(';').map(d => d.trim()).filter(d => d !== '').map(d => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]))
    t.match(directives, {
      'default-src': "'none'",
      'script-src': "'self'",
      'connect-src': "'self'",
      'base-uri': "'none'",
      'frame-ancestors': "'none'"
    }, url)
    t.notMatch(csp, /unsafe-inline|unsafe-eval|https:|\*/, `${url}: nothing inline, evaluated or from elsewhere`)
  }
})
