import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { redactUrl } from '../../config.js'

const BOOT_DEADLINE_MS = 5000

/**
 * One ioredis client for the whole service, tuned to fail fast: while Redis is away a command is
 * rejected at once (no offline queue) or after REDIS_COMMAND_TIMEOUT_MS, so that callers can fall
 * back instead of waiting a minute; ioredis keeps reconnecting in the background by itself.
 */
export default fp(async function redis (fastify) {
  const { REDIS_URL, REDIS_KEY_PREFIX, REDIS_COMMAND_TIMEOUT_MS } = fastify.config
  const client = new Redis(REDIS_URL, {
    keyPrefix: REDIS_KEY_PREFIX,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    connectionName: 'pulsewatch'
  })

  let lastError: Error | undefined
  let connected = false
  client.on('error', (err: Error) => {
    lastError = err
    fastify.log.debug({ err }, 'redis client error')
  })
  client.on('ready', () => {
    if (connected) return
    connected = true
    fastify.log.info('redis connection ready')
  })
  client.on('close', () => {
    if (!connected) return
    connected = false
    fastify.log.warn('redis connection lost; reconnecting in the background')
  })

  try {
    await waitForReady(client)
  } catch {
    client.disconnect()
    throw new Error(`Redis is unreachable at REDIS_URL ${redactUrl(REDIS_URL)}: ${lastError?.message ?? 'no answer'}`)
  }
  await fastify.register(fastifyRedis, { client, closeClient: true })
}, { name: 'redis' })

/** Waits for the first connection while ioredis retries refused ones, up to the boot deadline. */
async function waitForReady (client: Redis): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { client.off('ready', ready); reject(new Error('timeout')) }, BOOT_DEADLINE_MS)
    const ready = (): void => { clearTimeout(timer); resolve() }
    client.once('ready', ready)
  })
}
