// `npm run bench`: the service's hot paths against a bare Fastify baseline, in one run.
//
// It builds the service (`npm run build`), starts a private redis-server and PostgreSQL on free ports
// (scripts/servers.ts, as the tests do), the built service (`node dist/server.js`, production settings,
// LOG_LEVEL=warn) and the baseline (bench/baseline.ts), each as a process of its own. It registers a
// user and logs in through the API, then runs rounds that alternate baseline and service scenarios
// with autocannon, and reports medians: a table on stdout, a JSON report and an SVG chart under
// bench/results/. Every process it started is stopped at the end, also on failure or Ctrl-C.
//
// Environment (all optional):
//   BENCH_QUICK=1           one round of 2 s per scenario (the test uses it); writes quick.json/quick.svg
//   BENCH_ROUNDS, BENCH_DURATION (seconds), BENCH_CONNECTIONS   override the defaults (3, 10, 50)
//   BENCH_OUT=dir           where the report and chart go (default bench/results)
//   BENCH_BUILD=1 / 0       always / never run `npm run build`; by default it runs when dist/server.js is
//                           missing or older than a source file of the service
//   BENCH_PROBE=0           run the service without the Redis write counter (bench/redis-probe.ts)
//   BENCH_CPU_PROF=1        run the service with --cpu-prof; profiles go to <out>/profiles
//   BENCH_SCENARIOS=a,b     only these scenarios (baseline, hot, page, logout, login, redis-down)
//   BENCH_SERVICE_ENV='K=V K2=V2'  extra environment for the service (UV_THREADPOOL_SIZE=2, NODE_OPTIONS=…)
//   BENCH_RATE=n            offer a fixed n requests/s instead of as many as the server answers: on a busy
//                           machine, the service's CPU time per request (svc CPU us/req) then compares builds
import { createHmac, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import pg from 'pg'
import ts from 'typescript'
import { migrate } from '../migrations/index.js'
import { freePort, makeTempDir, startPostgres, startRedis } from '../scripts/servers.js'
import { cpuSeconds, machineTicks, peakRssMb, redisDelta, redisSnapshot, resetPeakRss, run, spawnNode, treeCpuSeconds, waitFor, type NodeProcess } from './harness.js'
import { runLoad, type LoadOptions } from './load.js'
import { chart, markdown, median, summarize, table, targets, type Sample, type ScenarioId } from './report.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function numberFromEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`)
  return value
}

const quick = process.env.BENCH_QUICK === '1'
const settings = {
  mode: quick ? 'quick' : 'full',
  rounds: Math.round(numberFromEnv('BENCH_ROUNDS', quick ? 1 : 3)),
  duration: numberFromEnv('BENCH_DURATION', quick ? 2 : 10),
  connections: Math.round(numberFromEnv('BENCH_CONNECTIONS', 50)),
  // The password hash (Argon2id, m=19 MiB, t=2, p=1: ~20 ms of one core) bounds login by design: a short
  // run, and few connections, so that its latency is the hash's and a short queue's, never a 503.
  loginDuration: quick ? 2 : 3,
  loginConnections: 4,
  warmup: quick ? 0.5 : 2,
  outDir: resolve(process.env.BENCH_OUT ?? join(root, 'bench', 'results')),
  build: process.env.BENCH_BUILD === '1' ? true : process.env.BENCH_BUILD === '0' ? false : 'auto' as const,
  probe: process.env.BENCH_PROBE !== '0',
  cpuProfile: process.env.BENCH_CPU_PROF === '1',
  scenarios: (process.env.BENCH_SCENARIOS ?? '').split(',').map(s => s.trim()).filter(s => s !== ''),
  rate: process.env.BENCH_RATE === undefined || process.env.BENCH_RATE === '' ? undefined : numberFromEnv('BENCH_RATE', 1),
  serviceEnv: Object.fromEntries((process.env.BENCH_SERVICE_ENV ?? '').split(/\s+/).filter(s => s.includes('=')).map(s => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]))
}
const logoutDuration = Math.max(settings.duration / 2, Math.min(settings.duration, 2))

// The service as the bench runs it. RATE_LIMIT_MAX is as high as the configuration allows: with the
// default 100 per minute the load would be answered 429 after the first 100 requests. The limiter
// still runs in full (one script per request); its window is 10 s so that 1,000,000 is never reached.
// REVOCATION_FAIL_MODE=open, so that with Redis stopped verified tokens are let through (200), not 503.
const JWT_SECRET = `bench-${randomUUID()}-${randomUUID()}`
const SERVICE_ENV = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  RATE_LIMIT_MAX: '1000000',
  RATE_LIMIT_WINDOW_MS: '10000',
  REVOCATION_FAIL_MODE: 'open',
  SHUTDOWN_DELAY_MS: '0',
  MIGRATE_ON_START: 'false'
}

const TITLES: Record<ScenarioId, { title: string, note: string }> = {
  baseline: { title: 'bare Fastify baseline', note: 'GET /users/:id answering the same JSON, nothing else' },
  hot: { title: 'hot path GET /users/:id', note: 'authenticated, rate-limited, deny-list-checked, cached (x-cache: hit)' },
  page: { title: 'GET /users page', note: 'GET /users?limit=20, authenticated, rate-limited, cached page of 20 users' },
  logout: { title: 'logout + refused GET', note: 'each connection repeats: POST /auth/logout (204) with a fresh token, then GET /users/:id with it (must be 401); figures are per request, a pair is two' },
  login: { title: 'POST /auth/login', note: 'bounded by Argon2id (m=19 MiB, t=2, p=1) by design; 4 connections, short runs' },
  'redis-down': { title: 'hot path, Redis stopped', note: 'redis-server stopped: in-memory rate limit, revocation fail-open, reads from PostgreSQL' }
}

const EXPECTED: Record<ScenarioId, number[]> = {
  baseline: [200], hot: [200], page: [200], logout: [204, 401], login: [200], 'redis-down': [200]
}

// ---------------------------------------------------------------- clean-up, also on failure and signals

const cleanups: Array<() => Promise<void> | void> = []
/** Node processes started, whose last output is shown when the bench fails. */
const nodes: NodeProcess[] = []
let cleaning: Promise<void> | undefined
async function cleanUp (): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) {
      try {
        await step()
      } catch (err) {
        process.stderr.write(`bench: clean-up step failed: ${(err as Error).message}\n`)
      }
    }
  })()
  await cleaning
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping every process it started\n`)
    cleanUp().finally(() => process.exit(130))
  })
}

// ---------------------------------------------------------------- helpers

/** The baseline and the Redis probe run as plain JavaScript next to the build, without a TypeScript loader. */
function transpile (source: string, target: string): string {
  const output = ts.transpileModule(readFileSync(join(root, source), 'utf8'), {
    fileName: source,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
  }).outputText
  const file = join(root, target)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, output)
  return file
}

/** Whether dist/server.js is missing or older than any source of the service (what tsconfig.build.json compiles). */
function buildIsStale (): boolean {
  const built = join(root, 'dist', 'server.js')
  if (!existsSync(built)) return true
  const builtAt = statSync(built).mtimeMs
  const newer = (path: string): boolean => {
    const stat = statSync(path)
    if (stat.isDirectory()) return readdirSync(path).some(entry => newer(join(path, entry)))
    return stat.mtimeMs > builtAt
  }
  return ['app.ts', 'server.ts', 'config.ts', 'plugins', 'routes', 'schemas', 'migrations', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json']
    .some(path => existsSync(join(root, path)) && newer(join(root, path)))
}

/** An access token exactly like the ones the service issues (same claims, same key), without a login. */
function mintToken (user: { id: string, role: string }, generation: number): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub: user.id, jti: randomUUID(), sid: randomUUID(), gen: generation, role: user.role, iat: now, exp: now + 900, iss: 'pulsewatch', aud: 'pulsewatch-api' })}`
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`
}

async function json (url: string, init: RequestInit & { expect: number }): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
  const text = await response.text()
  if (response.status !== init.expect) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`)
  return text === '' ? undefined : JSON.parse(text)
}

const log = (message: string): void => { process.stdout.write(`${message}\n`) }

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  const started = Date.now()
  log(`bench: ${settings.mode} mode, ${settings.rounds} round(s) of ${settings.duration} s, ${settings.connections} connections, ${cpus().length} CPU(s), Node ${process.version}`)

  if (settings.build === true || (settings.build === 'auto' && buildIsStale())) {
    log('bench: npm run build')
    run('npm', ['run', 'build', '--silent'], root)
  }
  const baselineJs = transpile('bench/baseline.ts', 'dist/bench/baseline.js')
  const probeJs = transpile('bench/redis-probe.ts', 'dist/bench/redis-probe.js')

  const dir = makeTempDir('pulsewatch-bench-')
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const [redis, postgres] = await Promise.all([startRedis(join(dir, 'redis')), startPostgres(join(dir, 'postgres'))])
  cleanups.push(async () => await redis.stop(), async () => await postgres.stop())
  const versions = { redis: '', postgres: '' }

  const admin = new pg.Client({ connectionString: postgres.url })
  await admin.connect()
  await admin.query('CREATE DATABASE pulsewatch_bench')
  versions.postgres = String((await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '').split(' ')[0] ?? ''
  await admin.end()
  const databaseUrl = new URL(postgres.url)
  databaseUrl.pathname = '/pulsewatch_bench'
  // Migrated here, from the sources, before the service starts (it runs with MIGRATE_ON_START=false):
  // the bench's database is ready whatever the build ships.
  await migrate(databaseUrl.toString())

  const stats = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200, connectionName: 'bench' })
  stats.on('error', () => {})
  cleanups.push(() => stats.disconnect())
  versions.redis = /redis_version:(\S+)/.exec(String(await stats.call('INFO', 'server')))?.[1] ?? ''

  // The service.
  const servicePort = await freePort()
  const profileDir = join(settings.outDir, 'profiles')
  const serviceArgs = [
    ...(settings.probe ? ['--import', pathToFileURL(probeJs).href] : []),
    ...(settings.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    'dist/server.js'
  ]
  const service = spawnNode('service', serviceArgs, {
    ...SERVICE_ENV,
    ...settings.serviceEnv,
    JWT_SECRET,
    DATABASE_URL: databaseUrl.toString(),
    REDIS_URL: redis.url,
    PORT: String(servicePort),
    HOST: '127.0.0.1',
    BENCH_REDIS_PORT: String(redis.port)
  }, `http://127.0.0.1:${servicePort}`, { cwd: root, logFile: join(dir, 'service.log'), ipc: settings.probe })
  nodes.push(service)
  cleanups.push(async () => await service.stop())
  await waitFor(service, '/readyz', body => (body as { status?: string }).status === 'ok')

  // A user, registered and logged in through the API; more users straight into the table for the page.
  const credentials = { email: 'bench@example.com', password: 'correct horse battery staple' }
  const user = await json(`${service.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...credentials, name: 'Bench User' }), expect: 201 }) as { id: string, role: string }
  // An admin reads every field of every user: the whole User JSON, which the baseline answers too
  // (another user would get only the public fields of the 99 others).
  const db = new pg.Client({ connectionString: databaseUrl.toString() })
  await db.connect()
  await db.query("UPDATE users SET role = 'admin' WHERE id = $1", [user.id])
  user.role = 'admin'
  const login = await json(`${service.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials), expect: 200 }) as { accessToken: string }
  const authorization = `Bearer ${login.accessToken}`
  await db.query(`INSERT INTO users (email, name, password_hash)
    SELECT 'user' || g || '@example.com', 'User ' || g, 'scrypt$32768$8$1$none$none' FROM generate_series(1, 99) AS g`)
  const userJson = await json(`${service.url}/users/${user.id}`, { headers: { authorization }, expect: 200 })

  // The baseline, answering with the very JSON the service answers.
  const baselinePort = await freePort()
  const baseline = spawnNode('baseline', [baselineJs], { PORT: String(baselinePort), HOST: '127.0.0.1', BENCH_USER: JSON.stringify(userJson) }, `http://127.0.0.1:${baselinePort}`, { cwd: root, logFile: join(dir, 'baseline.log') })
  nodes.push(baseline)
  cleanups.push(async () => await baseline.stop())
  await waitFor(baseline, `/users/${user.id}`)
  const [fromService, fromBaseline] = await Promise.all([
    fetch(`${service.url}/users/${user.id}`, { headers: { authorization } }).then(async r => await r.text()),
    fetch(`${baseline.url}/users/${user.id}`).then(async r => await r.text())
  ])
  if (fromService !== fromBaseline) throw new Error(`the baseline does not answer the service's JSON:\n${fromService}\n${fromBaseline}`)

  // The hot path reads the 100 users in turn: one id for every request would let async-cache-dedupe
  // coalesce concurrent reads of the same entry into one, and hide the cache's per-request cost.
  const ids = [user.id, ...(await db.query<{ id: string }>('SELECT id FROM users WHERE id <> $1 ORDER BY created_at', [user.id])).rows.map(r => r.id)]
  await db.end()
  const byIds = (base: string, headers?: Record<string, string>): LoadOptions => {
    let next = 0
    return {
      url: base,
      connections: settings.connections,
      duration: settings.duration,
      requests: [{ method: 'GET', ...(headers !== undefined ? { headers } : {}), setupRequest: (request) => ({ ...request, path: `/users/${ids[next++ % ids.length] ?? user.id}` }) }]
    }
  }
  const hot = (): LoadOptions => byIds(service.url, { authorization })
  const scenarios: Record<ScenarioId, () => { server: NodeProcess, load: LoadOptions }> = {
    baseline: () => ({ server: baseline, load: byIds(baseline.url) }),
    hot: () => ({ server: service, load: hot() }),
    // Everyone's first page: one cache entry, so concurrent reads of it are coalesced, as in production.
    page: () => ({ server: service, load: { url: `${service.url}/users?limit=20`, connections: settings.connections, duration: settings.duration, headers: { authorization } } }),
    logout: () => ({
      server: service,
      load: {
        url: service.url,
        connections: settings.connections,
        duration: logoutDuration,
        requests: [{
          method: 'POST',
          path: '/auth/logout',
          setupRequest: (request, context) => {
            const token = mintToken(user, 0)
            Object.assign(context, { token })
            return { ...request, headers: { authorization: `Bearer ${token}` } }
          }
        }, {
          method: 'GET',
          path: `/users/${user.id}`,
          setupRequest: (request, context) => ({ ...request, headers: { authorization: `Bearer ${(context as { token: string }).token}` } })
        }]
      }
    }),
    login: () => ({
      server: service,
      load: { url: `${service.url}/auth/login`, connections: settings.loginConnections, duration: settings.loginDuration, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) }
    }),
    'redis-down': () => ({ server: service, load: hot() })
  }

  const samples: Sample[] = []
  const measure = async (id: ScenarioId, round: number): Promise<Sample> => {
    const { server, load: offered } = scenarios[id]()
    const load = settings.rate === undefined || id === 'login' ? offered : { ...offered, overallRate: settings.rate }
    const redisUp = id !== 'redis-down'
    const usesRedis = server === service
    const probeBefore = usesRedis ? await server.probe() : undefined
    const redisBefore = usesRedis && redisUp ? await redisSnapshot(stats) : undefined
    const linesBefore = server.lines()
    const rssResettable = resetPeakRss(server.pid)
    const cpuBefore = { server: cpuSeconds(server.pid), redis: redisUp ? cpuSeconds(redis.pid) : 0, postgres: treeCpuSeconds(postgres.pid), bench: process.cpuUsage(), machine: machineTicks() }
    const result = await runLoad(load)
    const seconds = result.duration
    const machineNow = machineTicks()
    const cpu = {
      server: (cpuSeconds(server.pid) - cpuBefore.server) / seconds * 100,
      redis: redisUp ? (cpuSeconds(redis.pid) - cpuBefore.redis) / seconds * 100 : null,
      postgres: (treeCpuSeconds(postgres.pid) - cpuBefore.postgres) / seconds * 100,
      bench: (() => {
        const used = process.cpuUsage(cpuBefore.bench)
        return (used.user + used.system) / 1e6 / seconds * 100
      })(),
      machine: (machineNow.busy - cpuBefore.machine.busy) / Math.max(1, machineNow.total - cpuBefore.machine.total) * 100,
      steal: (machineNow.steal - cpuBefore.machine.steal) / Math.max(1, machineNow.total - cpuBefore.machine.total) * 100,
      other: 0
    }
    // What the machine did besides the bench, the two servers, Redis and PostgreSQL: other people's work.
    cpu.other = Math.max(0, cpu.machine * cpus().length - cpu.server - (cpu.redis ?? 0) - cpu.postgres - cpu.bench)
    const peak = rssResettable ? peakRssMb(server.pid) ?? null : null
    const redisAfter = redisBefore !== undefined ? await redisSnapshot(stats) : undefined
    const probeAfter = probeBefore !== undefined ? await server.probe() : undefined
    const requests = Math.max(1, result.requests)
    const delta = redisBefore !== undefined && redisAfter !== undefined ? redisDelta(redisBefore, redisAfter) : undefined
    const perRequest = (map: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v / requests]))
    const expected = EXPECTED[id]
    const unexpected = Object.entries(result.statuses).reduce((n, [status, count]) => expected.includes(Number(status)) ? n : n + count, 0) + result.errors
    const sample: Sample = {
      scenario: id,
      round,
      connections: load.connections,
      duration: seconds,
      requests: result.requests,
      requestsPerSecond: result.requestsPerSecond,
      latency: result.latency,
      latencyByStatus: result.latencyByStatus,
      statuses: result.statuses,
      errors: result.errors,
      timeouts: result.timeouts,
      slowest: result.slowest,
      unexpected,
      redis: delta === undefined
        ? null
        : { executedPerRequest: delta.commands / requests, callsPerRequest: perRequest(delta.calls), readsPerRequest: delta.reads / requests, usecPerRequest: delta.usec / requests },
      client: probeBefore === undefined || probeAfter === undefined
        ? null
        : {
            commandsPerRequest: (probeAfter.commands - probeBefore.commands) / requests,
            byCommandPerRequest: perRequest(Object.fromEntries(Object.entries(probeAfter.byCommand)
              .map(([k, v]) => [k, v - (probeBefore.byCommand[k] ?? 0)]).filter(([, v]) => (v as number) > 0))),
            writesPerRequest: (probeAfter.writes - probeBefore.writes) / requests
          },
      peakRssMb: peak,
      cpu,
      logLinesPerRequest: (server.lines() - linesBefore) / requests
    }
    log(`  ${`round ${round}`.padEnd(8)} ${id.padEnd(10)} ${sample.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${sample.latency.p50.toFixed(2).padStart(7)} ms  p99 ${sample.latency.p99.toFixed(2).padStart(7)} ms  max ${sample.latency.max.toFixed(1).padStart(7)} ms  ${JSON.stringify(sample.statuses)}${sample.client === null ? '' : `  ${sample.client.commandsPerRequest.toFixed(2)} Redis cmd/req`}  other CPU ${cpu.other.toFixed(0)} %`)
    return sample
  }

  const stopRedis = async (): Promise<void> => {
    await redis.stop()
    // The service notices at once (the connection closes); wait until its readiness says so.
    await waitFor(service, '/readyz', body => (body as { checks?: { redis?: string } }).checks?.redis === 'fail')
  }
  const startRedisAgain = async (): Promise<void> => {
    await redis.start()
    await waitFor(service, '/readyz', body => (body as { status?: string }).status === 'ok')
    await json(`${service.url}/users/${user.id}`, { headers: { authorization }, expect: 200 })
  }

  const order = (['baseline', 'hot', 'page', 'baseline', 'logout', 'login', 'redis-down'] as ScenarioId[])
    .filter(id => settings.scenarios.length === 0 || settings.scenarios.includes(id))
  const inRedisOutage = async <T>(id: ScenarioId, run: () => Promise<T>): Promise<T> => {
    if (id !== 'redis-down') return await run()
    await stopRedis()
    try {
      return await run()
    } finally {
      await startRedisAgain()
    }
  }

  // Every scenario once before measuring, so that what is measured is the code optimised, not its
  // first compilation: the hot path never runs the PostgreSQL fallback, and the first Redis outage
  // of a cold process took up to about 500 ms on the first requests (JIT), later ones under 200 ms.
  // The outage goes first: Redis restarts empty, and the other warm-ups fill the cache again.
  log(`bench: warm-up (${settings.warmup} s each)`)
  const outageFirst = [...new Set(order)].sort((a, b) => Number(b === 'redis-down') - Number(a === 'redis-down'))
  for (const id of outageFirst) {
    const { load } = scenarios[id]()
    await inRedisOutage(id, async () => await runLoad({ ...load, duration: Math.min(load.duration, settings.warmup) }))
  }

  // The hot path is the cached read: after the warm-up it must be a cache hit, with the same JSON.
  const check = await fetch(`${service.url}/users/${user.id}`, { headers: { authorization } })
  const checkBody = await check.text()
  if (check.status !== 200 || check.headers.get('x-cache') !== 'hit' || checkBody !== fromService) {
    throw new Error(`after the warm-up GET /users/:id answers ${check.status}, x-cache ${String(check.headers.get('x-cache'))}: ${checkBody}`)
  }

  log('bench: measuring')
  for (let round = 1; round <= settings.rounds; round++) {
    for (const id of order) samples.push(await inRedisOutage(id, async () => await measure(id, round)))
  }

  const summaries = summarize(samples, TITLES)
  const goals = targets(summaries)
  const elapsed = (Date.now() - started) / 1000
  const command = `${settings.mode === 'quick' ? 'BENCH_QUICK=1 ' : ''}npm run bench`
  const report = {
    generatedAt: new Date().toISOString(),
    command,
    elapsedSeconds: Math.round(elapsed),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', node: process.version, redis: versions.redis, postgres: versions.postgres },
    settings: {
      ...settings,
      outDir: relative(root, settings.outDir) || '.',
      logoutDuration,
      order,
      service: { command: `node ${serviceArgs.map(a => a.startsWith('file:') ? relative(root, fileURLToPath(a)) : a).join(' ')}`, env: { ...SERVICE_ENV, JWT_SECRET: '(random for each run, 79 characters)' } },
      baseline: 'node dist/bench/baseline.js (bench/baseline.ts)'
    },
    definitions: {
      requestsPerSecond: 'completed responses / seconds run; the scenario shows the median of its rounds, and ratios are to the median baseline',
      latency: 'ms, from every response time autocannon reports (all statuses), median of the rounds; max is the slowest response of all rounds',
      redisCommandsPerRequest: 'commands the service handed to ioredis (bench/redis-probe.ts, preloaded into the service) / responses; a script is one command (EVALSHA)',
      redisExecutedPerRequest: 'INFO commandstats calls during the run / responses: what Redis executed, the commands scripts run inside Redis included (the bench\'s own INFO excluded)',
      clientWritesPerRequest: 'writes the service made to its Redis sockets / responses: flights to Redis as the client sees them; below the command count when commands share a write (pipelining)',
      redisReadsPerRequest: 'INFO stats total_reads_processed during the run (less the bench\'s INFO) / responses: read events on Redis client sockets, i.e. the round trips as Redis saw them; commands that arrive together are one read',
      peakRssMb: 'VmHWM of the server process, reset (clear_refs 5) before each run and read after it; the scenario shows the highest round',
      cpu: '% of one core during the run, from /proc: server process, redis-server, PostgreSQL with its backends, the bench itself (autocannon); machine and steal: % of all cores busy, and taken by the hypervisor; other = the rest of the machine, in % of one core (other people\'s work on a shared machine)',
      serverCpuUsPerRequest: 'CPU time of the server process per response, microseconds; less sensitive to a busy machine than requests/s'
    },
    targets: goals,
    scenarios: summaries,
    samples
  }

  mkdirSync(settings.outDir, { recursive: true })
  const name = settings.mode === 'quick' ? 'quick' : 'latest'
  writeFileSync(join(settings.outDir, `${name}.json`), JSON.stringify(report, null, 2) + '\n')
  const other = median(samples.map(s => s.cpu.other))
  const caption = `${report.generatedAt.slice(0, 10)}: ${report.machine.cpus} cores, Node ${report.machine.node}, Redis ${versions.redis}, PostgreSQL ${versions.postgres}; ${settings.rounds} round(s) of ${settings.duration} s, ${settings.connections} connections; other work on the machine: ${other.toFixed(0)} % of a core`
  writeFileSync(join(settings.outDir, `${name}.svg`), chart(summaries, caption))
  writeFileSync(join(settings.outDir, `${name}.md`), `Produced by \`${command}\` on ${report.generatedAt} (${caption}).\n\n${markdown(summaries, goals)}`)

  log('')
  log(table(summaries))
  log('')
  for (const goal of goals) log(`${goal.met ? 'met   ' : 'MISSED'}  ${goal.name}: ${goal.value} (target ${goal.goal})`)
  log('')
  if (other > 20) log(`bench: the machine was busy: other work used ${other.toFixed(0)} % of a core (median), so these ratios are not those of a quiet machine (see cpu.other per sample)`)
  log(`bench: wrote ${relative(root, join(settings.outDir, `${name}.json`))}, ${name}.svg and ${name}.md in ${elapsed.toFixed(0)} s`)

  const broken = summaries.filter(s => s.unexpected > 0 || s.requestsPerSecond <= 0)
  if (broken.length > 0) {
    throw new Error(`unexpected answers or no traffic in: ${broken.map(s => `${s.id} ${JSON.stringify(s.statuses)} errors=${s.errors}`).join('; ')}`)
  }
}

try {
  await main()
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
  for (const node of nodes) if (node.tail() !== '') process.stderr.write(`bench: last output of ${node.name}:\n${node.tail()}\n`)
  process.exitCode = 1
} finally {
  await cleanUp()
  await sleep(0)
}
