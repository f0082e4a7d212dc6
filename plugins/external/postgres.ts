import fastifyPostgres from '@fastify/postgres'
import fp from 'fastify-plugin'
import { setTimeout as sleep } from 'node:timers/promises'
import { redactUrl } from '../../config.js'

const BOOT_DEADLINE_MS = 5000

/**
 * The PostgreSQL pool. Connections time out quickly so that a lost database turns into a 503
 * within a bounded time, and an idle connection dropped by the server never crashes the process.
 */
export default fp(async function postgres (fastify) {
  const { DATABASE_URL } = fastify.config
  await fastify.register(fastifyPostgres, {
    connectionString: DATABASE_URL,
    max: 20,
    connectionTimeoutMillis: 2000,
    idleTimeoutMillis: 30_000,
    query_timeout: 5000,
    application_name: 'pulsewatch'
  })
  fastify.pg.pool.on('error', (err) => fastify.log.warn({ err }, 'idle postgres connection lost'))

  const deadline = Date.now() + BOOT_DEADLINE_MS
  for (;;) {
    try {
      await fastify.pg.query('SELECT 1')
      return
    } catch (err) {
      // Only a refused or dropped connection is worth waiting for; a wrong database or password is not.
      const transient = typeof (err as { code?: unknown }).code !== 'string' || /^(E[A-Z]+|57P0[13])$/.test((err as { code: string }).code)
      if (!transient || Date.now() > deadline) {
        throw new Error(`PostgreSQL is unreachable at DATABASE_URL ${redactUrl(DATABASE_URL)}: ${(err as Error).message}`)
      }
      await sleep(250)
    }
  }
}, { name: 'postgres' })
