import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { DestinationStream } from 'pino'
import type { Test } from 'tap'
import { loadConfig } from '../config.js'
import { makeTempDir, startPostgres, startRedis, type LocalServer } from '../scripts/servers.js'

/** Waits for a condition by polling it, never a guessed sleep; the scripts share it. */
export { waitFor } from '../scripts/wait-for.js'

export type Env = Record<string, string>

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set: run the suite with npm test`)
  return value
}

export const TEST_REDIS_URL = (): string => required('TEST_REDIS_URL')
export const TEST_DATABASE_URL = (): string => required('TEST_DATABASE_URL')

/** The same server, another database. */
export function databaseUrl (serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

/** A new, empty database on the given server, dropped at teardown. */
export async function createDatabase (t: Test, serverUrl = TEST_DATABASE_URL()): Promise<string> {
  const name = `pw_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  t.teardown(async () => {
    const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 2000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } catch {
      // the test stopped this server for good; its folder goes away with the run
    } finally {
      await client.end().catch(() => {})
    }
  })
  return databaseUrl(serverUrl, name)
}

/** Deletes every key under a prefix at teardown (SCAN is fine in a test; the service never uses it). */
export function cleanKeys (t: Test, redisUrl: string, prefix: string): void {
  t.teardown(async () => {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
    redis.on('error', () => {})
    try {
      await redis.connect()
      for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 })) {
        if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]))
      }
    } catch {
      // the test stopped this Redis for good
    } finally {
      redis.disconnect()
    }
  })
}

/** A complete environment for one app (or several sharing it): its own database and key prefix. */
export async function testEnv (t: Test, overrides: Env = {}): Promise<Env> {
  const redisUrl = overrides.REDIS_URL ?? TEST_REDIS_URL()
  const prefix = overrides.REDIS_KEY_PREFIX ?? `pwt:${randomBytes(4).toString('hex')}:`
  cleanKeys(t, redisUrl, prefix)
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    // The suite registers and refreshes far more from one address than a client may; tests of those limits set their own.
    REGISTER_RATE_LIMIT_MAX: '100000',
    REFRESH_RATE_LIMIT_MAX: '100000',
    SHUTDOWN_DELAY_MS: '0',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    DATABASE_URL: overrides.DATABASE_URL ?? await createDatabase(t),
    ...overrides
  }
}

/** Builds the app on real Redis and PostgreSQL and closes it at teardown. Pass an env from testEnv to share it. */
export async function build (t: Test, env?: Env, options: { stream?: DestinationStream } = {}): Promise<FastifyInstance> {
  // Imported here, not above: a unit test of one plugin uses this file without loading the whole app.
  const { default: app, serverOptions } = await import('../app.js')
  const config = loadConfig(env ?? await testEnv(t))
  const fastify = Fastify(serverOptions(config, options.stream))
  t.teardown(async () => await fastify.close())
  await fastify.register(app, { config })
  await fastify.ready()
  return fastify
}

/** Two instances of the app on one environment (one database, one key prefix): two replicas. */
export async function twoInstances (t: Test, overrides: Env = {}): Promise<[FastifyInstance, FastifyInstance]> {
  const env = await testEnv(t, overrides)
  return [await build(t, env), await build(t, env)]
}

async function privateServer (t: Test, name: string, start: (dir: string) => Promise<LocalServer>): Promise<LocalServer> {
  const dir = makeTempDir(`pw-${name}-`)
  const server = await start(join(dir, name))
  t.teardown(async () => {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return server
}

/** A redis-server of this test's own, which it may stop, kill and restart; gone at teardown. */
export const privateRedis = async (t: Test): Promise<LocalServer> => await privateServer(t, 'redis', startRedis)

/** A PostgreSQL cluster of this test's own (about a second to start); gone at teardown. */
export const privatePostgres = async (t: Test): Promise<LocalServer> => await privateServer(t, 'postgres', startPostgres)

/**
 * Holds a table locked, as a stuck PostgreSQL would, so that a request or job that writes to it waits
 * mid-way, until `release`. A killed process's statement still waits then (PostgreSQL learns of a dead
 * client only when it next writes to it): `endWaiting` ends it, as the client's death would have.
 */
export async function lockTable (t: Test, databaseUrl: string, table: 'users' | 'refresh_tokens'): Promise<{ release: (options?: { endWaiting: boolean }) => Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(async () => await client.end())
  await client.query('BEGIN')
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
  return {
    release: async ({ endWaiting } = { endWaiting: false }) => {
      if (endWaiting) await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\' AND pid <> pg_backend_pid()')
      await client.query('COMMIT')
    }
  }
}

/**
 * Sends a race's second request 0 to 19 event-loop turns after the first (a millisecond is already
 * too late), so that the trials sweep the window in which their statements interleave.
 */
export async function staggered<T> (trial: number, send: () => Promise<T>): Promise<T> {
  for (let turn = 0; turn < trial % 20; turn++) await new Promise(resolve => setImmediate(resolve))
  return await send()
}

/** Runs `fn` and returns its result with the milliseconds it took. */
export async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now()
  const result = await fn()
  return [result, performance.now() - started]
}
