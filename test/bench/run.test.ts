// `npm run bench` end to end in quick mode (one round of 2 s per scenario): it builds, starts its own
// Redis, PostgreSQL, service and baseline, and must write a report with every scenario and sane numbers.
// No speed is asserted here: the figures depend on the machine; the README reports them.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeTempDir } from '../../scripts/servers.js'

interface Scenario {
  id: string
  requestsPerSecond: number
  p50: number
  p99: number
  statuses: Record<string, number>
  errors: number
  unexpected: number
  redisCommandsPerRequest: number | null
  peakRssMb: number | null
}

t.test('npm run bench, quick mode', { timeout: 90_000 }, async t => {
  const out = makeTempDir('pw-bench-test-')
  t.teardown(() => rmSync(out, { recursive: true, force: true }))

  const child = spawn(process.execPath, ['--import', 'tsx', join('bench', 'run.ts')], {
    env: { ...process.env, BENCH_QUICK: '1', BENCH_OUT: out },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  // SIGINT lets the bench stop everything it started.
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT') })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  t.equal(code, 0, 'the bench exits 0', { output })

  const file = join(out, 'quick.json')
  t.ok(existsSync(file), 'the JSON report is written')
  t.ok(readFileSync(join(out, 'quick.svg'), 'utf8').includes('<svg'), 'the chart is written')
  const report = JSON.parse(readFileSync(file, 'utf8')) as { scenarios: Scenario[], targets: Array<{ name: string, met: boolean }>, samples: unknown[] }

  const ids = ['baseline', 'hot', 'page', 'logout', 'login', 'redis-down']
  t.same(report.scenarios.map(s => s.id), ids, 'every scenario is reported')
  for (const s of report.scenarios) {
    t.ok(s.requestsPerSecond > 0, `${s.id}: requests were answered`)
    t.ok(s.p50 > 0 && s.p99 >= s.p50, `${s.id}: latencies are sane`)
    t.equal(s.errors, 0, `${s.id}: no connection errors`)
    t.equal(s.unexpected, 0, `${s.id}: only the expected statuses`, { statuses: s.statuses })
    if (s.id !== 'baseline') t.ok(s.peakRssMb !== null && s.peakRssMb > 10, `${s.id}: peak RSS is measured`)
  }
  const byId = new Map(report.scenarios.map(s => [s.id, s]))
  const hot = byId.get('hot')
  t.same(Object.keys(hot?.statuses ?? {}), ['200'], 'the hot path answers 200, never 429')
  t.ok((hot?.redisCommandsPerRequest ?? 0) > 0, 'Redis commands per request are counted')
  const logout = byId.get('logout')
  t.ok((logout?.statuses['204'] ?? 0) > 0 && (logout?.statuses['401'] ?? 0) > 0, 'logouts succeed and the token is refused after them')
  t.notOk(logout?.statuses['200'], 'no request with a logged-out token gets through')
  t.same(Object.keys(byId.get('redis-down')?.statuses ?? {}), ['200'], 'with Redis stopped the hot path still answers 200')
  t.equal(report.targets.length, 5, 'every target is evaluated')
  t.match(output, /hot path throughput/, 'the table and the targets are printed')
})
