// Private redis-server and PostgreSQL processes on free loopback ports, for tests, `npm run dev` and the
// benchmarks. Each lives in a folder of its own, so that a test may stop, kill or restart it freely.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'

export interface LocalServer {
  readonly url: string
  readonly port: number
  /** The running process's pid (to SIGSTOP it, say). */
  readonly pid: number
  /** Starts the process again on the same port and data folder. */
  start (): Promise<void>
  /** SIGTERM, or SIGKILL with `crash`, and waits for the process to be gone. */
  stop (options?: { crash?: boolean }): Promise<void>
}

/** A fresh folder under the system temp dir that the postgres user can reach when we run as root. */
export function makeTempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  chmodSync(dir, 0o755)
  return dir
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')))
    })
  })
}

export function postgresBinDir (): string | undefined {
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter(v => existsSync(join(root, v, 'bin', 'initdb')))
    versions.sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(root, versions[0], 'bin')
  }
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim()
  return found === '' ? undefined : join(found, '..')
}

export function hasRedisServer (): boolean {
  return spawnSync('sh', ['-c', 'command -v redis-server']).status === 0
}

async function waitUntil (what: string, probe: () => Promise<boolean>, child: ChildProcess, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`)
    if (await probe()) return
    await sleep(50)
  }
  throw new Error(`${what} did not start within ${ms} ms`)
}

function managed (name: string, url: string, port: number, launch: () => ChildProcess, ready: () => Promise<boolean>): LocalServer {
  let child: ChildProcess | undefined
  const alive = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null
  return {
    url,
    port,
    get pid () {
      if (child?.pid === undefined) throw new Error(`${name} is not running`)
      return child.pid
    },
    async start () {
      if (alive(child)) return
      child = launch()
      child.stderr?.on('data', () => {})
      await waitUntil(name, ready, child)
    },
    async stop ({ crash = false } = {}) {
      const running = child
      if (!alive(running)) return
      const exited = new Promise(resolve => running.once('exit', resolve))
      running.kill(crash ? 'SIGKILL' : name === 'postgres' ? 'SIGINT' : 'SIGTERM')
      await exited
    }
  }
}

async function answersPing (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.setTimeout(500)
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', data => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

/** A redis-server without persistence, like the seed's dev Redis; `extra` adds server arguments. */
export async function startRedis (dir: string, port?: number, extra: string[] = []): Promise<LocalServer> {
  const chosen = port ?? await freePort()
  mkdirSync(dir, { recursive: true })
  const server = managed('redis-server', `redis://127.0.0.1:${chosen}`, chosen, () => spawn('redis-server', [
    '--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...extra
  ], { stdio: ['ignore', 'ignore', 'pipe'] }), async () => await answersPing(chosen))
  await server.start()
  return server
}

function redisCli (port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout
}

async function eventually (what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`)
    await sleep(100)
  }
}

/** A Redis Cluster of `masters` nodes (no replicas), created with redis-cli --cluster create. */
export async function startRedisCluster (dir: string, masters = 3): Promise<{ nodes: LocalServer[], seeds: string }> {
  const ports = await Promise.all(Array.from({ length: masters }, async () => await freePort()))
  const nodes = await Promise.all(ports.map(async (port, i) => await startRedis(join(dir, `node-${i}`), port, [
    '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'
  ])))
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  await eventually('cluster_state:ok', () => ports.every(port => redisCli(port, 'cluster', 'info').includes('cluster_state:ok')))
  return { nodes, seeds: ports.map(port => `127.0.0.1:${port}`).join(',') }
}

/** A master, one replica and three Sentinels (quorum 2) watching them as `name`; fails over in about 2 s. */
export async function startSentinelGroup (dir: string, name = 'mymaster'): Promise<{ master: LocalServer, replica: LocalServer, sentinels: LocalServer[], addresses: string }> {
  const master = await startRedis(join(dir, 'master'))
  const replica = await startRedis(join(dir, 'replica'), undefined, ['--replicaof', '127.0.0.1', String(master.port)])
  await eventually('replica in sync', () => redisCli(replica.port, 'info', 'replication').includes('master_link_status:up'))
  const sentinels: LocalServer[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const home = join(dir, `sentinel-${i}`)
    mkdirSync(home, { recursive: true })
    const conf = join(home, 'sentinel.conf')
    writeFileSync(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${home}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 3000`,
      `sentinel parallel-syncs ${name} 1`
    ].join('\n') + '\n')
    const sentinel = managed('redis-sentinel', `redis://127.0.0.1:${port}`, port,
      () => spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] }), async () => await answersPing(port))
    await sentinel.start()
    sentinels.push(sentinel)
  }
  // A failover needs every sentinel to know the replica and a majority of its peers.
  await eventually('sentinels discovered each other and the replica', () => sentinels.every(s =>
    (redisCli(s.port, 'sentinel', 'replicas', name).match(/^name$/gm) ?? []).length === 1 &&
    (redisCli(s.port, 'sentinel', 'sentinels', name).match(/^name$/gm) ?? []).length === 2))
  return { master, replica, sentinels, addresses: sentinels.map(s => `127.0.0.1:${s.port}`).join(',') }
}

// initdb and postgres refuse to run as root: as root, run them as the postgres user.
const asPostgres = process.getuid?.() === 0 ? { uid: id('-u'), gid: id('-g') } : {}

/** A throwaway PostgreSQL cluster: trust authentication on loopback, durability traded for speed. */
export async function startPostgres (dir: string, port?: number): Promise<LocalServer> {
  const bin = postgresBinDir()
  if (bin === undefined) throw new Error('PostgreSQL binaries not found (apt-get install postgresql)')
  const chosen = port ?? await freePort()
  const data = join(dir, 'pgdata')
  mkdirSync(dir, { recursive: true })
  if (asPostgres.uid !== undefined) chownSync(dir, asPostgres.uid, asPostgres.gid)
  if (!existsSync(join(data, 'PG_VERSION'))) {
    const args = ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']
    const result = spawnSync(join(bin, 'initdb'), args, { encoding: 'utf8', ...asPostgres })
    if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr}`)
  }
  const url = `postgres://postgres@127.0.0.1:${chosen}/postgres`
  const server = managed('postgres', url, chosen, () => spawn(join(bin, 'postgres'), [
    '-D', data, '-p', String(chosen), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'
  ], { stdio: ['ignore', 'ignore', 'pipe'], ...asPostgres }), async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    client.on('error', () => {})
    try {
      await client.connect()
      return true
    } catch {
      return false
    } finally {
      await client.end().catch(() => {})
    }
  })
  await server.start()
  return server
}

function id (flag: '-u' | '-g'): number {
  return Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim())
}
