// `npm test`: starts a private redis-server and PostgreSQL on free ports in a temp dir (unless
// TEST_REDIS_URL / TEST_DATABASE_URL are given), runs tap with them, and stops them at the end. What
// the machine lacks (redis-server, PostgreSQL, the browser test's chromium) it installs with apt-get
// when run as root, as `npm run dev` does; else it prints the command to run.
// `npm run test:quick` (--quick): the app's tests alone, for the edit-test loop, without coverage.
// `npm test -- test/a.test.ts …` runs those files.
import { spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { CHROMIUM, ensureInstalled, hasRedisServer, postgresBinDir } from './binaries.js'
import { makeTempDir, startPostgres, startRedis, type LocalServer } from './servers.js'

const BROWSER_TEST = 'test/plugins/external/swagger-browser.test.ts'
/** Not the app's behaviour: the tooling around it, each slow. */
const NOT_QUICK = [
  'test/deploy/**', // the chart, the Dockerfile, and the image layout (an npm ci of its own)
  'test/bench/run.test.ts', // npm run bench end to end
  BROWSER_TEST, // Swagger UI in chromium
  'test/scripts/dev.test.ts' // npm run dev end to end
]

const quick = process.argv.includes('--quick')
const args = process.argv.slice(2).filter(arg => arg !== '--quick')
const named = args.filter(arg => !arg.startsWith('-') && existsSync(arg))
// The coverage thresholds are the whole suite's: a run of some files reports coverage without failing on it.
const coverage = quick ? ['--disable-coverage'] : named.length > 0 ? ['--allow-incomplete-coverage'] : []
const tapArgs = [...(quick ? NOT_QUICK.map(glob => `--exclude=${glob}`) : []), ...coverage, ...args]

// Whether tap runs the browser test: every file does, or named files and folders of which one holds it.
const browser = !quick && (named.length === 0 || named.some(path => !relative(path, BROWSER_TEST).startsWith('..')))

const env = { ...process.env }
const need = (what: string, present: () => boolean, packages: string[]): boolean =>
  ensureInstalled({ who: 'test', missing: `${what} is not installed`, present, packages })
if ((env.TEST_REDIS_URL === undefined && !need('redis-server', hasRedisServer, ['redis-server'])) ||
  (env.TEST_DATABASE_URL === undefined && !need('PostgreSQL', () => postgresBinDir() !== undefined, ['postgresql']))) {
  process.exit(1)
}
// Without it the browser test fails, saying so; the rest of the suite still runs.
if (browser) need(`chromium (for ${BROWSER_TEST})`, () => existsSync(CHROMIUM), ['chromium', 'fonts-liberation'])

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
  const tap = spawn(join('node_modules', '.bin', 'tap'), tapArgs, { stdio: 'inherit', env })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => tap.kill(signal))
  process.exitCode = await new Promise<number>(resolve => tap.on('exit', (code) => resolve(code ?? 1)))
} finally {
  await Promise.all(started.map(async server => await server.stop()))
  rmSync(dir, { recursive: true, force: true })
}
