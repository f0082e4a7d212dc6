import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import t from 'tap'
import { freePort, makeTempDir } from '../../scripts/servers.js'
import { waitFor } from '../../scripts/wait-for.js'
import { withoutTapLoader } from '../process.js'

t.test('npm run dev starts private Redis and PostgreSQL when nothing answers, serves /readyz, and stops them on exit', async t => {
  const localDir = makeTempDir('pw-dev-')
  t.teardown(() => rmSync(localDir, { recursive: true, force: true }))
  const [port, dead] = [await freePort(), await freePort()]
  const dev = spawn(...withoutTapLoader('npm', ['run', '--silent', 'dev']), {
    env: { ...process.env, PULSEWATCH_LOCAL_DIR: localDir, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: `redis://127.0.0.1:${dead}`, DATABASE_URL: `postgres://postgres@127.0.0.1:${dead}/pulsewatch` },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let output = ''
  dev.stdout.on('data', chunk => { output += chunk })
  dev.stderr.on('data', chunk => { output += chunk })
  const exited = once(dev, 'exit')
  t.teardown(() => { try { process.kill(-dev.pid!, 'SIGKILL') } catch {} })

  const ready = await waitFor(async () => {
    if (dev.exitCode !== null) throw new Error(`npm run dev exited with ${dev.exitCode}: ${output.slice(-300)}`)
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
    return res?.ok === true && await res.json() as unknown
  }, { what: () => `npm run dev to serve /readyz: ${output.slice(-300)}`, timeoutMs: 30_000, intervalMs: 200 })
  t.same(ready, { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } })
  t.match(output, /started a private redis-server/)
  t.match(output, /started a private PostgreSQL/)

  process.kill(-dev.pid!, 'SIGINT')
  await exited
  const left = spawn('pgrep', ['-f', localDir])
  const [code] = await once(left, 'exit')
  t.equal(code, 1, 'no process of the private servers is left')
})
