// The image without Docker: the Dockerfile's stages are carried out on this machine (test/deploy/docker.ts)
// and the server is started from the runtime stage's files, on the pinned Node LTS binary the runtime
// image carries, as the image's user, against the suite's Redis and PostgreSQL.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import type { Pod } from 'kubernetes-types/core/v1.js'
import pg from 'pg'
import t from 'tap'
import { freePort } from '../../scripts/servers.js'
import { NODE_LTS, ROOT, nodeLts } from '../../scripts/tools.js'
import { testEnv, waitFor } from '../helper.js'
import { build, readStages, withoutTapLoader, type Built } from './docker.js'
import { DEV, one, render } from './support.js'

const run = promisify(execFile)
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const stages = readStages()
let node = ''
let image: Built

// npm ci of the whole tree, the build and a server start: more than .taprc's 120 s on a loaded machine.
t.setTimeout(300_000)

t.before(async () => {
  node = await nodeLts()
  // npm ci writes 230 MB: on a tmpfs the build takes half the time it takes on disk.
  const out = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pulsewatch-image-'))
  chmodSync(out, 0o755)
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  // RUN sees the image's Node first on PATH and npm's cache, as a cache mount would give it. The
  // machine's variables (a proxy's CA, say) pass; tap's loader, coverage and npm-run variables do not.
  const machine = Object.entries(process.env).filter(([name]) => !/^(NODE_OPTIONS|NODE_V8_COVERAGE|TAP|_TAP|TS_NODE|npm_)/i.test(name))
  const runEnv = { ...Object.fromEntries(machine) as Record<string, string>, PATH: `${dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}` }
  image = (await build(stages, out, runEnv)).at(-1) as Built
  // The runtime's FROM image carries node in /usr/local/bin: so does the layout, and the image's user
  // runs nothing from the checkout, whose parent folders it may not be allowed to enter.
  const carried = join(image.root, 'usr', 'local', 'bin', 'node')
  mkdirSync(dirname(carried), { recursive: true })
  copyFileSync(node, carried)
  chmodSync(carried, 0o755)
  node = carried
})

t.test('the pinned Node binary is the LTS release that the Dockerfile\'s runtime image carries', async t => {
  const { stdout } = await run(node, ['-p', 'JSON.stringify([process.version, process.release.lts ?? null])'])
  const [version, lts] = JSON.parse(stdout) as [string, string | null]
  t.equal(version, `v${NODE_LTS.version}`)
  t.type(lts, 'string', `an LTS build (${lts})`)
  t.ok(stages.at(-1)?.from.getImageTag()?.startsWith(`${NODE_LTS.version}-`))
})

t.test('the runtime layout holds package.json, the production dependencies and dist, and no dev dependency', async t => {
  const app = join(image.root, image.workdir)
  t.same(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json'])
  t.ok(existsSync(join(app, 'dist', 'server.js')))
  t.ok(readdirSync(join(app, 'dist', 'migrations')).some(file => file.endsWith('.sql')), 'the migrations ship with dist')
  t.same(Object.keys(pkg.dependencies).filter(name => !existsSync(join(app, 'node_modules', name))), [], 'every dependency')
  // A devDependency may also be needed at run time by a dependency (yaml, by @fastify/swagger): the lock
  // file marks what only development needs, and none of that may ship.
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const devOnly = Object.keys(pkg.devDependencies).filter(name => lock.packages[`node_modules/${name}`]?.dev === true)
  t.ok(devOnly.length > 5, `development-only packages: ${devOnly.length}`)
  t.same(devOnly.filter(name => existsSync(join(app, 'node_modules', name))), [], 'no development-only dependency')
  t.notOk(existsSync(join(app, 'node_modules', 'typescript')) || existsSync(join(app, 'node_modules', 'tap')))
  t.same(readdirSync(join(app, 'dist', 'scripts')).filter(file => file.endsWith('.js')).sort(), ['create-admin.js', 'migrate.js'],
    'the operator commands ship, the development scripts do not')
})

interface Server { child: ChildProcess, output: () => string, exited: Promise<number | null> }

/** USER uid:gid, which applies when the suite runs as root (CI); a non-root runner already is someone else. */
function asImageUser (): { uid?: number, gid?: number } {
  const [uid, gid] = (image.user ?? '').split(':').map(Number)
  return process.getuid?.() === 0 && uid !== undefined ? { uid, gid: gid ?? uid } : {}
}

function start (env: Record<string, string>): Server {
  const cmd = image.cmd ?? []
  if (cmd[0] !== 'node') throw new Error(`CMD ${JSON.stringify(cmd)} does not start node`)
  const child = spawn(...withoutTapLoader(node, cmd.slice(1)), { cwd: join(image.root, image.workdir), env, stdio: ['ignore', 'pipe', 'pipe'], ...asImageUser() })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  return { child, output: () => output.slice(-3000), exited }
}

async function readyz (port: number): Promise<{ status: number, body: unknown } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })
    return { status: res.status, body: await res.json() }
  } catch {
    return undefined
  }
}

t.test('the server starts from that layout as the image user, serves /readyz, passes the helm test and exits 0 on SIGTERM', async t => {
  const port = await freePort()
  const base = await testEnv(t)
  const server = start({
    ...image.env,
    PATH: `${dirname(node)}:/usr/bin:/bin`,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: randomBytes(24).toString('hex'),
    DATABASE_URL: base.DATABASE_URL as string,
    REDIS_URL: base.REDIS_URL as string,
    REDIS_KEY_PREFIX: base.REDIS_KEY_PREFIX as string,
    SHUTDOWN_DELAY_MS: '1000'
  })
  t.teardown(() => { server.child.kill('SIGKILL') })

  const ready = await waitFor(async () => {
    if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.output()}`)
    const answer = await readyz(port)
    return answer?.status === 200 && answer
  }, { what: () => `/readyz to answer 200: ${server.output()}`, timeoutMs: 15_000, intervalMs: 100 })
  t.same(ready, { status: 200, body: { status: 'ok', checks: { redis: 'ok', postgres: 'ok' } } })

  const db = new pg.Client({ connectionString: base.DATABASE_URL })
  await db.connect()
  const { rows } = await db.query<{ version: number }>('SELECT max(version)::int AS version FROM schema_migrations')
  await db.end()
  const newest = Math.max(...readdirSync(join(ROOT, 'migrations')).map(file => Number(/^(\d+)\.do\./.exec(file)?.[1] ?? 0)))
  t.equal(rows[0]?.version, newest, 'MIGRATE_ON_START applied every migration, so the SQL ships in dist')

  // The chart's `helm test` pod runs this very script with the image's node.
  const command = one<Pod>(await render(4, [DEV]), 'Pod', 'pw-pulsewatch-test-readyz').spec?.containers[0]?.command ?? []
  t.equal(command[0], 'node')
  const helmTest = async (url: string): Promise<{ code: number, stdout: string }> => await new Promise(resolve => {
    execFile(...withoutTapLoader(node, command.slice(1)), { env: { READYZ_URL: url } }, (err, stdout) => resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout }))
  })
  const passed = await helmTest(`http://127.0.0.1:${port}/readyz`)
  t.equal(passed.code, 0)
  t.match(passed.stdout, /^200 \{"status":"ok"/)
  t.equal((await helmTest(`http://127.0.0.1:${await freePort()}/readyz`)).code, 1, 'and fails when nothing answers')

  const stopping = Date.now()
  server.child.kill('SIGTERM')
  await t.resolves(waitFor(async () => {
    if (server.child.exitCode !== null) throw new Error(`the server exited before /readyz answered 503: ${server.output()}`)
    return (await readyz(port))?.status === 503
  }, { what: '/readyz to answer 503' }), '/readyz answers 503 while draining')
  t.equal(await server.exited, 0, server.output())
  // The chart's grace period must exceed the drain plus the app's 10 s close deadline: this is that promise.
  t.ok(Date.now() - stopping < 1000 + 10_000, 'within SHUTDOWN_DELAY_MS + 10 s')
})

t.test('the operator commands run from that layout: migrate, then create-admin refuses a squatted address, creates an admin and promotes on request', async t => {
  const base = await testEnv(t)
  const env = {
    ...image.env,
    PATH: `${dirname(node)}:/usr/bin:/bin`,
    JWT_SECRET: randomBytes(24).toString('hex'),
    DATABASE_URL: base.DATABASE_URL as string,
    REDIS_URL: base.REDIS_URL as string,
    REDIS_KEY_PREFIX: base.REDIS_KEY_PREFIX as string,
    ADMIN_PASSWORD: 'operator password'
  }
  const exec = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => await new Promise(resolve => {
    execFile(...withoutTapLoader(node, args), { cwd: join(image.root, image.workdir), env, ...asImageUser() }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout, stderr }))
  })
  const migrated = await exec(['dist/scripts/migrate.js'])
  t.equal(migrated.code, 0, migrated.stderr)

  const db = new pg.Client({ connectionString: base.DATABASE_URL })
  await db.connect()
  t.teardown(async () => await db.end())
  const row = async (email: string): Promise<{ role: string, password_hash: string, token_generation: number } | undefined> =>
    (await db.query('SELECT role, password_hash, token_generation FROM users WHERE email = $1', [email])).rows[0]
  await db.query('INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3)', ['ops@example.com', 'Squatter', 'the squatter\'s hash'])

  const refused = await exec(['dist/scripts/create-admin.js', '--email', 'ops@example.com'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /already exists; --promote-existing would make it an admin AND reset its password/)
  t.same(await row('ops@example.com'), { role: 'user', password_hash: 'the squatter\'s hash', token_generation: 0 }, 'the squatter keeps its account as it was')

  const created = await exec(['dist/scripts/create-admin.js', '--email', 'root@example.com', '--name', 'Root'])
  t.equal(created.code, 0, created.stderr)
  t.match(await row('root@example.com'), { role: 'admin', token_generation: 0 })

  const promoted = await exec(['dist/scripts/create-admin.js', '--email', 'ops@example.com', '--promote-existing'])
  t.equal(promoted.code, 0, promoted.stderr)
  const after = await row('ops@example.com')
  t.match(after, { role: 'admin', token_generation: 1 })
  t.not(after?.password_hash, 'the squatter\'s hash')
})
