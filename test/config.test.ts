import t from 'tap'
import { ConfigError, loadConfig, redactUrl, trustProxy } from '../config.js'

const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://db/pw', REDIS_URL: 'rediss://cache:6380' }

t.test('every variable has the contract default outside production', async t => {
  t.match(loadConfig({}), {
    PORT: 3000,
    HOST: '0.0.0.0',
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/pulsewatch',
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: 'pw:',
    JWT_ISSUER: 'pulsewatch',
    JWT_AUDIENCE: 'pulsewatch-api',
    ACCESS_TOKEN_TTL: 900,
    REFRESH_TOKEN_TTL: 604800,
    RATE_LIMIT_MAX: 100,
    RATE_LIMIT_WINDOW_MS: 60000,
    LOGIN_RATE_LIMIT_MAX: 5,
    CACHE_TTL: 60,
    TRUST_PROXY: 'false',
    REVOCATION_FAIL_MODE: 'closed',
    MIGRATE_ON_START: true
  })
})

t.test('values are converted from their text, and an empty variable counts as unset', async t => {
  t.match(loadConfig({ PORT: '8080', TRUST_PROXY: 'true', MIGRATE_ON_START: 'false', HOST: '' }), { PORT: 8080, TRUST_PROXY: 'true', MIGRATE_ON_START: false, HOST: '0.0.0.0' })
})

t.test('TRUST_PROXY is true, false, a hop count, or proxy addresses and CIDRs, as Fastify takes them', async t => {
  t.equal(trustProxy('false'), false)
  t.equal(trustProxy('true'), true)
  t.equal(trustProxy('0'), false, 'no hop is no proxy')
  const twoHops = trustProxy('2') as (address: string, hop: number) => boolean
  t.same([0, 1, 2].map(hop => twoHops('192.0.2.1', hop)), [true, true, false], 'a count trusts the hops nearest the service')
  t.same(trustProxy('10.0.0.0/8, 192.168.1.7,fd00::/8,::1'), ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'])
  for (const value of ['17', '10.0.0.0/33', 'fd00::/129', '10.0.0.1,', '1.2.3', 'banana', '10.0.0.0/8/8', '-1', 'TRUE']) {
    t.equal(trustProxy(value), undefined, value)
    t.throws(() => loadConfig({ TRUST_PROXY: value }), /^TRUST_PROXY is invalid: expected true, false, a hop count from 1 to 16, or a comma-separated list/, value)
  }
  t.match(loadConfig({ TRUST_PROXY: '1' }), { TRUST_PROXY: '1' })
})

t.test('a malformed variable is refused with one line naming it', async t => {
  const cases: Record<string, string> = {
    PORT: 'abc',
    RATE_LIMIT_MAX: '3.5',
    CACHE_TTL: '0',
    TRUST_PROXY: 'yes',
    LOG_LEVEL: 'loud',
    REVOCATION_FAIL_MODE: 'ajar',
    DATABASE_URL: 'mysql://db',
    REDIS_URL: 'http://cache',
    REDIS_KEY_PREFIX: 'has space',
    NODE_ENV: 'staging',
    JWT_AUDIENCE: 'has space'
  }
  for (const [key, value] of Object.entries(cases)) {
    const err = t.throws(() => loadConfig({ [key]: value }), ConfigError, key) as Error
    t.match(err.message, new RegExp(`^${key} is invalid: [^\\n]+$`), key)
  }
})

t.test('production requires a JWT secret of at least 32 characters and explicit connection URLs', async t => {
  t.ok(loadConfig(production))
  t.throws(() => loadConfig({ ...production, JWT_SECRET: 'x'.repeat(31) }), /^JWT_SECRET must be at least 32 characters/)
  for (const key of ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
    t.throws(() => loadConfig({ ...production, [key]: undefined }), new RegExp(`^${key} is required when NODE_ENV=production`))
  }
})

t.test('secrets are never echoed in a refusal', async t => {
  const err = t.throws(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db' })) as Error
  t.notMatch(err.message, /hunter2/)
  t.equal(redactUrl('rediss://user:hunter2@cache:6380/0'), 'rediss://user:***@cache:6380/0')
})

// METRICS_PORT and DOCS_ENABLED
t.test('METRICS_PORT is unset by default, a port from 1 to 65535 otherwise, and never PORT itself', async t => {
  t.equal(loadConfig({}).METRICS_PORT, undefined, 'unset: /metrics stays on PORT')
  t.equal(loadConfig({ METRICS_PORT: '9464' }).METRICS_PORT, 9464)
  for (const value of ['0', '65536', '9464.5', 'metrics', '-1']) {
    t.throws(() => loadConfig({ METRICS_PORT: value }), /^METRICS_PORT is invalid: expected an integer from 1 to 65535 \(got "[^"]*"\)$/, value)
  }
  t.throws(() => loadConfig({ PORT: '8080', METRICS_PORT: '8080' }), /^METRICS_PORT must differ from PORT/)
  t.throws(() => loadConfig({ METRICS_PORT: '3000' }), /^METRICS_PORT must differ from PORT/, 'nor the default PORT')
})

t.test('DOCS_ENABLED is true by default and takes true or false', async t => {
  t.equal(loadConfig({}).DOCS_ENABLED, true)
  t.equal(loadConfig({ DOCS_ENABLED: 'false' }).DOCS_ENABLED, false)
  t.equal(loadConfig({ DOCS_ENABLED: 'true' }).DOCS_ENABLED, true)
  t.throws(() => loadConfig({ DOCS_ENABLED: 'off' }), /^DOCS_ENABLED is invalid: expected true or false \(got "off"\)$/)
})
