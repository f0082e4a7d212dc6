// `npm run dev`: the service from source with pretty logs and reload on change. When nothing answers
// at REDIS_URL or DATABASE_URL, it starts private ones from the machine's binaries in .local/
// (installing them with apt-get when run as root), creates the database when missing, and serves.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { loadConfig, redactUrl } from '../config.js'
import { ensureInstalled, hasRedisServer, postgresBinDir } from './binaries.js'
import { startPostgres, startRedis, type LocalServer } from './servers.js'

const localDir = process.env.PULSEWATCH_LOCAL_DIR ?? join(process.cwd(), '.local')
// No drain pause in development: tsx restarts the server on every change.
const env: Record<string, string | undefined> = { NODE_ENV: 'development', SHUTDOWN_DELAY_MS: '0', ...process.env }
const config = loadConfig(env)
const started: LocalServer[] = []

async function redisAnswers (url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.ping() === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/** 'ok', 'no-database' (the server answers, the database is missing) or 'down'. */
async function postgresState (url: string): Promise<'ok' | 'no-database' | 'down'> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code === '3D000' ? 'no-database' : 'down'
  } finally {
    await client.end().catch(() => {})
  }
}

async function createDatabase (url: string): Promise<void> {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.slice(1))
  target.pathname = '/postgres'
  const client = new pg.Client({ connectionString: target.toString() })
  await client.connect()
  await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`)
  await client.end()
  console.log(`dev: created database ${name}`)
}

/** Exits when a program the private servers need is missing and cannot be installed. */
function installOrExit (what: string, present: () => boolean, aptPackage: string): void {
  if (!ensureInstalled({ who: 'dev', missing: `${what} is not installed and nothing answers at its URL`, present, packages: [aptPackage] })) process.exit(1)
}

if (!await redisAnswers(config.REDIS_URL)) {
  installOrExit('redis-server', hasRedisServer, 'redis-server')
  const redis = await startRedis(join(localDir, 'redis'))
  started.push(redis)
  env.REDIS_URL = redis.url
  console.log(`dev: nothing answered at ${redactUrl(config.REDIS_URL)}; started a private redis-server at ${redis.url}`)
}

const database = decodeURIComponent(new URL(config.DATABASE_URL).pathname.slice(1)) || 'pulsewatch'
const state = await postgresState(config.DATABASE_URL)
if (state === 'no-database') await createDatabase(config.DATABASE_URL)
if (state === 'down') {
  installOrExit('PostgreSQL', () => postgresBinDir() !== undefined, 'postgresql')
  const postgres = await startPostgres(join(localDir, 'postgres'))
  started.push(postgres)
  env.DATABASE_URL = new URL(`/${database}`, postgres.url).toString()
  if (await postgresState(env.DATABASE_URL) === 'no-database') await createDatabase(env.DATABASE_URL)
  console.log(`dev: nothing answered at ${redactUrl(config.DATABASE_URL)}; started a private PostgreSQL at ${redactUrl(env.DATABASE_URL)}`)
}

const server = spawn(process.execPath, [join('node_modules', 'tsx', 'dist', 'cli.mjs'), 'watch', '--clear-screen=false', 'server.ts'], { stdio: 'inherit', env })
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true
    server.kill(signal)
  })
}
const code = await new Promise<number>(resolve => server.on('exit', (exitCode) => resolve(exitCode ?? 0)))
await Promise.all(started.map(async local => await local.stop()))
process.exit(stopping ? 0 : code)
