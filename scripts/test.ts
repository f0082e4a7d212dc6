// `npm test`: starts a private redis-server and PostgreSQL on free ports in a temp dir (unless
// TEST_REDIS_URL / TEST_DATABASE_URL are given), runs tap with them, and stops them at the end.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeTempDir, startPostgres, startRedis, type LocalServer } from './servers.js'

const env = { ...process.env }
const dir = makeTempDir('pulsewatch-test-')
const started: LocalServer[] = []

try {
  if (env.TEST_REDIS_URL === undefined) {
    const redis = await startRedis(join(dir, 'redis'))
    started.push(redis)
    env.TEST_REDIS_URL = redis.url
  }
  if (env.TEST_DATABASE_URL === undefined) {
    const postgres = await startPostgres(join(dir, 'postgres'))
    started.push(postgres)
    env.TEST_DATABASE_URL = postgres.url
  }
  const tap = spawn(join('node_modules', '.bin', 'tap'), process.argv.slice(2), { stdio: 'inherit', env })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => tap.kill(signal))
  process.exitCode = await new Promise<number>(resolve => tap.on('exit', (code) => resolve(code ?? 1)))
} finally {
  await Promise.all(started.map(async server => await server.stop()))
  rmSync(dir, { recursive: true, force: true })
}
