import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import { Cluster, Redis, type Command, type RedisOptions } from 'ioredis'
import { redactUrl, type Config } from '../../config.js'

const BOOT_DEADLINE_MS = 5000

const addresses = (list: string): Array<{ host: string, port: number }> => list.split(',').map(entry => {
  const at = entry.lastIndexOf(':')
  return { host: entry.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(entry.slice(at + 1)) }
})

/**
 * A client whose commands of one event-loop turn leave in one socket write: the socket is corked at
 * the turn's first command and uncorked once the loop has handled its batch of I/O (setImmediate),
 * so Node writes them together (writev). That is what auto-pipelining achieves, without its pipeline
 * and two promises per command (docs/benchmarks.md).
 */
class CoalescingRedis extends Redis {
  private corked = false

  override sendCommand (command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    if (!this.corked && stream === undefined && this.status === 'ready') {
      const socket = this.stream
      this.corked = true
      socket.cork()
      setImmediate(() => {
        this.corked = false
        socket.uncork()
      })
    }
    return super.sendCommand(command, stream)
  }
}

/**
 * One client for the whole service, for a standalone Redis (REDIS_URL), a Sentinel group
 * (REDIS_SENTINELS) or a Cluster (REDIS_CLUSTER_NODES). In the latter two, REDIS_URL still gives the
 * credentials and TLS (`rediss://`) of the data nodes. Every mode fails fast: while Redis is away a
 * command is rejected at once (no offline queue) or after REDIS_COMMAND_TIMEOUT_MS, so that callers
 * fall back instead of waiting a minute, and ioredis keeps reconnecting in the background by itself.
 */
export function createRedisClient (config: Config): Redis {
  const url = new URL(config.REDIS_URL)
  // `replyMapping` is left at its default: the subclass below is of the default (RESP2) client.
  const shared: Omit<RedisOptions, 'replyMapping'> = {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: 1,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    connectionName: 'pulsewatch'
  }
  // Not ioredis's auto-pipelining, which costs a pipeline and two promises per command: a request
  // sends one command (the rate limit's script), and CoalescingRedis batches the writes instead. On a
  // Cluster, auto-pipelining also routed a script whose key count varies by its first argument (the
  // count), not by its first key: every such call failed ("All keys in the pipeline should belong to
  // the same slots allocation group").
  const enableAutoPipelining = false
  const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000)

  if (config.REDIS_CLUSTER_NODES !== undefined) {
    const cluster = new Cluster(addresses(config.REDIS_CLUSTER_NODES), {
      keyPrefix: config.REDIS_KEY_PREFIX,
      enableOfflineQueue: false,
      enableAutoPipelining,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: 2000,
      redisOptions: shared
    })
    // The service sends only commands that both clients share (every multi-key command stays in
    // one hash slot), so the Cluster stands in for the Redis type that @fastify/redis decorates.
    return cluster as unknown as Redis
  }
  const common: Omit<RedisOptions, 'replyMapping'> = { ...shared, keyPrefix: config.REDIS_KEY_PREFIX, enableOfflineQueue: false, enableAutoPipelining, retryStrategy }
  if (config.REDIS_SENTINELS !== undefined) {
    return new CoalescingRedis({
      ...common,
      sentinels: addresses(config.REDIS_SENTINELS),
      name: config.REDIS_SENTINEL_NAME,
      ...(config.REDIS_SENTINEL_PASSWORD !== undefined ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
      sentinelRetryStrategy: retryStrategy,
      sentinelCommandTimeout: 1000,
      // Not failoverDetector: with ioredis 6.0.0 it keeps reconnecting to the sentinels after
      // quit(), so a closed app never lets its process exit. The retry strategy follows a failover anyway.
      failoverDetector: false
    })
  }
  return new CoalescingRedis(config.REDIS_URL, common)
}

export function describeRedis (config: Config): string {
  if (config.REDIS_CLUSTER_NODES !== undefined) return `REDIS_CLUSTER_NODES ${config.REDIS_CLUSTER_NODES}`
  if (config.REDIS_SENTINELS !== undefined) return `REDIS_SENTINELS ${config.REDIS_SENTINELS} (master ${config.REDIS_SENTINEL_NAME})`
  return `REDIS_URL ${redactUrl(config.REDIS_URL)}`
}

export default fp(async function redis (fastify) {
  const client = createRedisClient(fastify.config)

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
    throw new Error(`Redis is unreachable at ${describeRedis(fastify.config)}: ${lastError?.message ?? 'no answer'}`)
  }
  await fastify.register(fastifyRedis, { client })
  // Not @fastify/redis's closeClient: its quit() is refused while Redis is away (there is no offline
  // queue), and the app would then fail to close. Without a connection there is nothing to flush.
  fastify.addHook('onClose', async () => {
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect())
    else client.disconnect()
  })
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
