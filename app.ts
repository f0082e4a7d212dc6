import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Bindings, ChildLoggerOptions, DestinationStream, Level, Logger } from 'pino'
import { trustProxy, type Config } from './config.js'
import helmet from './plugins/external/helmet.js'
import jwt from './plugins/external/jwt.js'
import postgres from './plugins/external/postgres.js'
import redis from './plugins/external/redis.js'
import swagger from './plugins/external/swagger.js'
import admission from './plugins/admission/index.js'
import authenticate from './plugins/admission/authenticate.js'
import counters from './plugins/admission/counters.js'
import revocation from './plugins/admission/revocation.js'
import cache from './plugins/cache/index.js'
import idempotency from './plugins/idempotency/index.js'
import usersCache from './plugins/cache/users.js'
import credentials from './plugins/app/credentials.js'
import errors from './plugins/app/errors.js'
import lifecycle from './plugins/app/lifecycle.js'
import loginLimit from './plugins/app/login-limit.js'
import metrics from './plugins/app/metrics.js'
import migrations from './plugins/app/migrations.js'
import passwords from './plugins/app/passwords.js'
import redisBreaker from './plugins/app/redis-breaker.js'
import requestId, { genReqId } from './plugins/app/request-id.js'
import repositories from './plugins/app/repositories.js'
import tokens from './plugins/app/tokens.js'
import validation from './plugins/app/validation.js'
import authRoutes from './routes/auth/index.js'
import health from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import protectedRoutes from './routes/protected.js'
import { sharedSchemas } from './schemas/user.js'

interface AppOptions {
  config: Config
}

/** The whole service as one plugin: external plugins, then our decorators, then the routes. */
async function app (fastify: FastifyInstance, { config }: AppOptions): Promise<void> {
  fastify.decorate('config', config)
  for (const schema of sharedSchemas) fastify.addSchema(schema)
  await fastify.register(validation)
  await fastify.register(errors)
  await fastify.register(requestId)
  await fastify.register(lifecycle)

  // Before any hook that may answer early, so that every answer carries the security headers.
  await fastify.register(helmet)
  await fastify.register(redis)
  await fastify.register(postgres)
  await fastify.register(jwt)
  await fastify.register(migrations)

  await fastify.register(redisBreaker)
  await fastify.register(counters)
  await fastify.register(passwords)
  await fastify.register(repositories)
  await fastify.register(cache)
  await fastify.register(usersCache)
  await fastify.register(metrics)
  await fastify.register(revocation)
  await fastify.register(tokens)
  await fastify.register(admission)
  await fastify.register(authenticate)
  await fastify.register(loginLimit)
  await fastify.register(credentials)
  await fastify.register(idempotency)
  // After every hook, so that the docs routes get them; before the routes it documents.
  await fastify.register(swagger)

  await fastify.register(health)
  await fastify.register(metricsRoutes)
  await fastify.register(authRoutes, { prefix: '/auth' })
  await fastify.register(protectedRoutes)
}

export default fp(app, { name: 'pulsewatch' })

const REDACTED = [
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'password', '*.password', 'currentPassword', '*.currentPassword', 'accessToken', '*.accessToken', 'refreshToken', '*.refreshToken', 'token', '*.token'
]

/**
 * The logger of one request, bound to its id. Fastify makes one for every request, and a pino child
 * is costly (its bindings pass through the redaction; docs/benchmarks.md). At the production level a
 * request rarely logs, so the child is made on the first line that is written.
 */
class RequestLogger {
  #child: FastifyBaseLogger | undefined

  constructor (private readonly parent: Logger, private readonly bindings: Bindings, private readonly options: ChildLoggerOptions) {}

  get level (): string {
    return this.#child?.level ?? this.parent.level
  }

  set level (level: string) {
    this.#logger().level = level
  }

  fatal (...args: unknown[]): void { this.#write('fatal', args) }
  error (...args: unknown[]): void { this.#write('error', args) }
  warn (...args: unknown[]): void { this.#write('warn', args) }
  info (...args: unknown[]): void { this.#write('info', args) }
  debug (...args: unknown[]): void { this.#write('debug', args) }
  trace (...args: unknown[]): void { this.#write('trace', args) }
  silent (): void {}

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger().child(bindings, options)
  }

  #logger (): FastifyBaseLogger {
    this.#child ??= this.parent.child(this.bindings, this.options)
    return this.#child
  }

  #write (level: Level, args: unknown[]): void {
    if (this.#child === undefined && !this.parent.isLevelEnabled(level)) return
    (this.#logger()[level] as (...line: unknown[]) => void)(...args)
  }
}

function requestLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  // A route with a level of its own (none here today) gets its child at once: the parent's level would not say.
  if (options.level !== undefined) return logger.child(bindings, options)
  return new RequestLogger(logger as Logger, bindings, options) as unknown as FastifyBaseLogger
}

/** Options for the Fastify instance itself, which must exist before any plugin. */
export function serverOptions (config: Config, stream?: DestinationStream): FastifyServerOptions {
  const pretty = config.NODE_ENV === 'development' && stream === undefined
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED, censor: '[redacted]' },
      ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
      ...(stream !== undefined ? { stream } : {})
    },
    genReqId,
    childLoggerFactory: requestLogger,
    trustProxy: trustProxy(config.TRUST_PROXY),
    bodyLimit: 1024 * 1024,
    // During the drain we keep answering (with `Connection: close`) instead of refusing with 503.
    return503OnClosing: false
  }
}
