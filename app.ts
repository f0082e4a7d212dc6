import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import postgres from './plugins/external/postgres.js'
import redis from './plugins/external/redis.js'
import errors from './plugins/app/errors.js'
import lifecycle from './plugins/app/lifecycle.js'
import migrations from './plugins/app/migrations.js'
import requestId, { genReqId } from './plugins/app/request-id.js'
import validation from './plugins/app/validation.js'
import health from './routes/health.js'

export interface AppOptions {
  config: Config
}

/** The whole service as one plugin: external plugins, then our decorators, then the routes. */
async function app (fastify: FastifyInstance, { config }: AppOptions): Promise<void> {
  fastify.decorate('config', config)
  await fastify.register(validation)
  await fastify.register(errors)
  await fastify.register(requestId)
  await fastify.register(lifecycle)

  await fastify.register(redis)
  await fastify.register(postgres)
  await fastify.register(migrations)

  await fastify.register(health)
}

export default fp(app, { name: 'pulsewatch' })

const REDACTED = [
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'password', '*.password', 'accessToken', '*.accessToken', 'refreshToken', '*.refreshToken', 'token', '*.token'
]

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
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 1024 * 1024,
    // During the drain we keep answering (with `Connection: close`) instead of refusing with 503.
    return503OnClosing: false
  }
}
