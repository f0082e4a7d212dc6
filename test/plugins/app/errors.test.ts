import Fastify, { type FastifyError } from 'fastify'
import { readFile } from 'node:fs/promises'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import errorHandler, { errors } from '../../../plugins/app/errors.js'

interface Line { level: number, msg: string, err?: { message: string } }

const DEBUG = 20
const WARN = 40
const ERROR = 50

/**
 * A bare Fastify with the errors plugin and one route, which takes an integer `n` and throws `err`.
 * `logged`: the log lines that carry an error; `again()` asks once more, `loggedSoFar()` reads them since.
 */
async function answerTo (t: Test, err: Error, url = '/') {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  t.teardown(async () => await app.close())
  await app.register(errorHandler)
  app.get('/', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } }, async () => { throw err })
  const res = await app.inject(url)
  const withError = (): Line[] => lines.filter(line => line.err !== undefined)
  return { res, body: res.json(), logged: withError(), again: async () => await app.inject(url), loggedSoFar: withError }
}

t.test('a 503 of the catalogue sends its message, code and retry-after, and is logged at debug only', async t => {
  const { res, body, logged } = await answerTo(t, errors.hashingBusy(3))
  t.same(body, { statusCode: 503, error: 'Service Unavailable', message: 'Too many passwords are being checked, retry in 3 seconds', code: 'PW_HASHING_BUSY' })
  t.equal(res.headers['retry-after'], '3')
  t.same(logged.map(line => line.level), [DEBUG], 'an outage the breaker reports: no error line per request')
})

t.test('a PostgreSQL that cannot be reached answers a generic 503: the first refusal warns, the next ones are debug', async t => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' })
  const { body, again, loggedSoFar } = await answerTo(t, refused)
  t.same(body, { statusCode: 503, error: 'Service Unavailable', message: 'A dependency is unavailable, try again shortly' })
  await again()
  await again()
  t.same(loggedSoFar().map(line => line.level), [WARN, DEBUG, DEBUG], 'one warn line per outage, not one per request')
})

t.test('a bug answers a generic 500 and is logged at error with its cause', async t => {
  const { body, logged } = await answerTo(t, new TypeError('cannot read properties of undefined (reading \'rows\')'))
  t.same(body, { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  t.same(logged.map(line => [line.level, line.err?.message]), [[ERROR, 'cannot read properties of undefined (reading \'rows\')']])
})

t.test('a 5xx that a library marks `expose` is still a bug: logged at error, its message kept from the client', async t => {
  for (const statusCode of [502, 503]) {
    const { body, logged } = await answerTo(t, Object.assign(new Error('upstream 10.0.0.7 said no'), { statusCode, expose: true }))
    t.equal(body.statusCode, statusCode)
    t.notMatch(JSON.stringify(body), /upstream|10\.0\.0\.7/, `${statusCode}: no internal detail`)
    t.same(logged.map(line => line.level), [ERROR], `${statusCode}: logged at error`)
  }
})

t.test('a 4xx of the catalogue sends its message and code and logs nothing', async t => {
  const { body, logged } = await answerTo(t, errors.userNotFound())
  t.same(body, { statusCode: 404, error: 'Not Found', message: 'User not found', code: 'PW_USER_NOT_FOUND' })
  t.same(logged, [])
})

t.test('Fastify\'s own 4xx keep their code', async t => {
  const { body, logged } = await answerTo(t, new Error('not reached: validation fails first'), '/?n=many')
  t.match(body, { statusCode: 400, error: 'Bad Request', code: 'FST_ERR_VALIDATION' })
  t.same(logged, [])
})

t.test('messages that name seconds keep their wording and carry them as retryAfter', async t => {
  t.match(errors.rateLimited(1), { message: 'Rate limit exceeded, retry in 1 second', retryAfter: 1, statusCode: 429 })
  t.match(errors.rateLimited(30), { message: 'Rate limit exceeded, retry in 30 seconds', retryAfter: 30 })
  t.match(errors.loginThrottled(1), { message: 'Too many failed logins, retry in 1 seconds', retryAfter: 1, code: 'PW_LOGIN_THROTTLED' })
})

t.test('every code is unique and listed in docs/errors.md with its status', async t => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
  const made = Object.values(errors).map(make => (make as (seconds: number) => FastifyError)(1))
  t.equal(new Set(made.map(err => err.code)).size, made.length, 'no code twice')
  for (const err of made) {
    t.match(err.code, /^PW_[A-Z_]+$/)
    t.ok(doc.includes(`| \`${err.code}\` | ${err.statusCode} |`), `${err.code} (${err.statusCode}) is documented`)
  }
})
