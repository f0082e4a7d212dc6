// Private redis-server and PostgreSQL processes on free loopback ports, for tests, `npm run dev` and the
// benchmarks. Each lives in a folder of its own, so that a test may stop, kill or restart it freely.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { postgresBinDir } from './binaries.js'
import { waitFor } from './wait-for.js'

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

/** A server process this module starts, stops and restarts; `ready` tells when it answers. */
export function managed (name: string, url: string, port: number, launch: () => ChildProcess, ready: () => Promise<boolean>): LocalServer {
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
      const launched = launch()
      child = launched
      launched.stderr?.on('data', () => {})
      await waitFor(async () => {
        if (launched.exitCode !== null) throw new Error(`${name} exited with code ${launched.exitCode}`)
        return await ready()
      }, { what: `${name} to answer`, timeoutMs: 15_000 })
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

export async function answersPing (port: number): Promise<boolean> {
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
