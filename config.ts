import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { isIP } from 'node:net'

const Integer = (minimum: number, maximum: number, value: number) =>
  Type.Integer({ minimum, maximum, default: value })

// host:port[,host:port…], for Sentinel and Cluster seed addresses.
const HOST_LIST = '^[A-Za-z0-9.:\\[\\]-]+:[0-9]{1,5}(,[A-Za-z0-9.:\\[\\]-]+:[0-9]{1,5})*$'

const DEV_JWT_SECRET = 'pulsewatch-development-secret-not-for-production'

export const ConfigSchema = Type.Object({
  PORT: Integer(0, 65535, 3000),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  // Unset: /metrics is served on PORT beside the API. Set: only there, on a server of its own.
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  DOCS_ENABLED: Type.Boolean({ default: true }),
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(level => Type.Literal(level)), { default: 'info' }),
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/pulsewatch' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'pw:' }),
  REDIS_COMMAND_TIMEOUT_MS: Integer(10, 60_000, 200),
  REDIS_SENTINELS: Type.Optional(Type.String({ pattern: HOST_LIST })),
  REDIS_SENTINEL_NAME: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', default: 'mymaster' }),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: HOST_LIST })),
  REDIS_WAIT_REPLICAS: Integer(0, 16, 0),
  REDIS_WAIT_TIMEOUT_MS: Integer(1, 10_000, 250),
  JWT_SECRET: Type.String({ minLength: 1, default: DEV_JWT_SECRET }),
  JWT_ISSUER: Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$', default: 'pulsewatch' }),
  JWT_AUDIENCE: Type.String({ pattern: '^[\\x21-\\x7e]{1,200}$', default: 'pulsewatch-api' }),
  ACCESS_TOKEN_TTL: Integer(10, 86_400, 900),
  REFRESH_TOKEN_TTL: Integer(60, 31_536_000, 604_800),
  RATE_LIMIT_MAX: Integer(1, 1_000_000, 100),
  RATE_LIMIT_WINDOW_MS: Integer(100, 86_400_000, 60_000),
  LOGIN_RATE_LIMIT_MAX: Integer(1, 1_000_000, 5),
  LOGIN_ACCOUNT_MAX: Integer(1, 1_000_000, 20),
  LOGIN_ACCOUNT_WINDOW_MS: Integer(1000, 86_400_000, 300_000),
  REGISTER_RATE_LIMIT_MAX: Integer(1, 1_000_000, 20),
  REGISTER_RATE_LIMIT_WINDOW_MS: Integer(100, 86_400_000, 60_000),
  REFRESH_RATE_LIMIT_MAX: Integer(1, 1_000_000, 30),
  REFRESH_RATE_LIMIT_WINDOW_MS: Integer(100, 86_400_000, 60_000),
  CACHE_TTL: Integer(1, 86_400, 60),
  IDEMPOTENCY_TTL: Integer(60, 604_800, 86_400),
  IDEMPOTENCY_LEASE_MS: Integer(1000, 600_000, 10_000),
  // The worker (worker.ts): its queue Redis, the purge's schedule and retention, shutdown and job locks.
  QUEUE_REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  PURGE_EVERY_MS: Integer(1000, 604_800_000, 3_600_000),
  PURGE_RETENTION_DAYS: Integer(0, 3650, 30),
  PURGE_BATCH_SIZE: Integer(1, 100_000, 1000),
  JOB_LOCK_MS: Integer(1000, 600_000, 30_000),
  WORKER_SHUTDOWN_TIMEOUT_MS: Integer(1000, 600_000, 25_000),
  TRUST_PROXY: Type.String({ minLength: 1, default: 'false' }),
  REVOCATION_FAIL_MODE: Type.Union([Type.Literal('closed'), Type.Literal('open')], { default: 'closed' }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  SHUTDOWN_DELAY_MS: Integer(0, 60_000, 2000)
})

export type Config = Static<typeof ConfigSchema>

/** Variables that may carry credentials: never echoed, and without a default in production. */
const SECRETS = ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL', 'QUEUE_REDIS_URL', 'REDIS_SENTINEL_PASSWORD']
const REQUIRED_IN_PRODUCTION = ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL']

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads the configuration from an environment-like object. An empty variable counts as unset.
 * Throws a ConfigError whose message is one line naming the variable at fault.
 */
export function loadConfig (env: Record<string, string | undefined>): Config {
  const raw: Record<string, string> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const production = raw.NODE_ENV === 'production'
  if (production) {
    for (const key of REQUIRED_IN_PRODUCTION) {
      if (raw[key] === undefined) throw new ConfigError(`${key} is required when NODE_ENV=production`)
    }
    if ((raw.JWT_SECRET ?? '').length < 32) {
      throw new ConfigError('JWT_SECRET must be at least 32 characters when NODE_ENV=production')
    }
  }

  const fail = (key: string, schema: TSchema): never => {
    const shown = SECRETS.includes(key) ? '' : ` (got ${JSON.stringify(raw[key])})`
    throw new ConfigError(`${key} is invalid: ${describe(schema)}${shown}`)
  }
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    // Value.Convert would quietly turn "3.5" into 3: integers must be written as integers.
    if (schema.type === 'integer' && raw[key] !== undefined && !/^\d+$/.test(raw[key])) fail(key, schema)
  }

  const config = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, { ...raw }))
  const error = Value.Errors(ConfigSchema, config).First()
  if (error !== undefined) fail(error.path.split('/')[1] ?? 'configuration', error.schema)
  if (trustProxy((config as Config).TRUST_PROXY) === undefined) {
    throw new ConfigError(`TRUST_PROXY is invalid: expected true, false, a hop count from 1 to ${MAX_HOPS}, or a comma-separated list of proxy addresses or CIDRs (got ${JSON.stringify(raw.TRUST_PROXY)})`)
  }
  if (raw.REDIS_SENTINELS !== undefined && raw.REDIS_CLUSTER_NODES !== undefined) {
    throw new ConfigError('REDIS_SENTINELS and REDIS_CLUSTER_NODES exclude each other: set one')
  }
  if ((config as Config).METRICS_PORT === (config as Config).PORT) {
    throw new ConfigError('METRICS_PORT must differ from PORT: it gives /metrics a port of its own')
  }
  return config as Config
}

/** Ends a process that cannot start, with one line naming the program and the reason. */
export function refuseToStart (program: string, message: string): never {
  process.stderr.write(`${program}: ${message}\n`)
  process.exit(1)
}

/** The configuration of an entry point (server.ts, worker.ts); a bad variable ends the process with one line. */
export function configOrExit (program: string): Config {
  try {
    return loadConfig(process.env)
  } catch (err) {
    return refuseToStart(program, (err as Error).message)
  }
}

const MAX_HOPS = 16

const isAddressOrCidr = (entry: string): boolean => {
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))
}

/**
 * TRUST_PROXY as Fastify's `trustProxy`: `true` believes the left-most X-Forwarded-For entry, which
 * the client writes (never in production); a list trusts those addresses or CIDRs; a hop count trusts
 * that many proxies in front of the service, whatever their address. Fastify 5.12 takes a number as
 * "trust none", so the count is a function of the hop (0 is the peer). Undefined for anything else.
 */
export function trustProxy (value: string): boolean | string[] | ((address: string, hop: number) => boolean) | undefined {
  if (value === 'true' || value === 'false') return value === 'true'
  if (/^\d{1,2}$/.test(value)) {
    const hops = Number(value)
    if (hops > MAX_HOPS) return undefined
    return hops === 0 ? false : (_address: string, hop: number) => hop < hops
  }
  const entries = value.split(',').map(entry => entry.trim())
  return entries.every(isAddressOrCidr) ? entries : undefined
}

function describe (schema: TSchema): string {
  if (schema.anyOf !== undefined) return `expected one of ${schema.anyOf.map((s: TSchema) => s.const).join(', ')}`
  if (schema.type === 'integer') return `expected an integer from ${schema.minimum} to ${schema.maximum}`
  if (schema.type === 'boolean') return 'expected true or false'
  if (schema.pattern !== undefined) return `expected a value matching ${schema.pattern}`
  return 'expected a non-empty string'
}

/** A connection URL fit for a log line: the password, if any, is masked. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}
