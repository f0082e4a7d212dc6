// Processes, Redis statistics and /proc readings for the bench.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor as waitUntil } from '../scripts/wait-for.js'
import type { Redis } from 'ioredis'

// ---------------------------------------------------------------- processes

export interface NodeProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
  readonly url: string
  /** Lines the process wrote to stdout and stderr so far (its log lines). */
  readonly lines: () => number
  /** The last few KB of its output, for error messages. */
  readonly tail: () => string
  /** The redis-probe counters, when the process was started with the probe and an IPC channel. */
  probe: () => Promise<RedisProbe | undefined>
  stop: () => Promise<void>
}

export interface RedisProbe { commands: number, writes: number, bytes: number, sockets: number, byCommand: Record<string, number> }

const TAIL = 8192

/**
 * Spawns `node args…` with exactly `env` (plus PATH). Its output goes to `logFile`, not to a pipe: a
 * pipe that the bench, busy generating load, read late would block the server's synchronous log
 * writes and show up as the server's latency.
 */
export function spawnNode (name: string, args: string[], env: Record<string, string>, url: string, options: { cwd: string, logFile: string, ipc?: boolean }): NodeProcess {
  const fd = openSync(options.logFile, 'a')
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', fd, fd, ...(options.ipc === true ? ['ipc' as const] : [])]
  })
  closeSync(fd)
  if (child.pid === undefined) throw new Error(`${name} could not be started`)
  let lines = 0
  let counted = 0
  const countLines = (): number => {
    const size = statSync(options.logFile).size
    if (size > counted) {
      const file = openSync(options.logFile, 'r')
      const buffer = Buffer.alloc(1 << 20)
      try {
        while (counted < size) {
          const read = readSync(file, buffer, 0, Math.min(buffer.length, size - counted), counted)
          if (read <= 0) break
          for (let i = buffer.indexOf(0x0a); i !== -1 && i < read; i = buffer.indexOf(0x0a, i + 1)) lines++
          counted += read
        }
      } finally {
        closeSync(file)
      }
    }
    return lines
  }
  const tail = (): string => {
    try {
      const size = statSync(options.logFile).size
      const file = openSync(options.logFile, 'r')
      try {
        const buffer = Buffer.alloc(Math.min(TAIL, size))
        readSync(file, buffer, 0, buffer.length, size - buffer.length)
        return buffer.toString()
      } finally {
        closeSync(file)
      }
    } catch {
      return ''
    }
  }
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const running = (): boolean => child.exitCode === null && child.signalCode === null
  return {
    name,
    child,
    pid: child.pid,
    url,
    lines: countLines,
    tail,
    async probe () {
      if (child.send === undefined || !child.connected) return undefined
      const answer = new Promise<RedisProbe | undefined>(resolve => {
        const timer = setTimeout(() => { child.off('message', listener); resolve(undefined) }, 2000)
        const listener = (message: unknown): void => {
          const counters = (message as { redisProbe?: RedisProbe }).redisProbe
          if (counters === undefined) return
          clearTimeout(timer)
          child.off('message', listener)
          resolve(counters)
        }
        child.on('message', listener)
      })
      child.send('redis-probe')
      return await answer
    },
    async stop () {
      if (child.connected) child.disconnect()
      if (!running()) return
      child.kill('SIGTERM')
      const timedOut = await Promise.race([exited.then(() => false), sleep(10_000, true)])
      if (timedOut && running()) {
        child.kill('SIGKILL')
        await exited
      }
    }
  }
}

/** Waits until `path` answers 200 and `accept` likes the JSON body; fails early if the process exits. */
export async function waitFor (server: NodeProcess, path: string, accept: (body: unknown) => boolean = () => true, ms = 30_000): Promise<void> {
  await waitUntil(async () => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`${server.name} exited (${server.child.exitCode ?? server.child.signalCode}): ${server.tail()}`)
    }
    try {
      const response = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(2000) })
      return response.status === 200 && accept(await response.json())
    } catch {
      return false
    }
  }, { what: () => `${server.name} to answer ${path} as expected: ${server.tail()}`, timeoutMs: ms, intervalMs: 100 })
}

export function run (command: string, args: string[], cwd: string): void {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal})`)
}

// ---------------------------------------------------------------- Redis statistics

export interface RedisSnapshot {
  /** Calls per command (lowercased, subcommands as `config|get`), the bench's own INFO excluded. */
  calls: Record<string, number>
  /** Microseconds Redis spent executing commands, INFO excluded. */
  usec: number
  commands: number
  /** Read events on client sockets: one per batch of bytes read, however many commands it held. */
  reads: number
}

/** One INFO, so that the bench's own traffic is exactly one command and one read per snapshot. */
export async function redisSnapshot (redis: Redis): Promise<RedisSnapshot> {
  const text = String(await redis.call('INFO', 'stats', 'commandstats'))
  const calls: Record<string, number> = {}
  let usec = 0
  let reads = 0
  let commands = 0
  for (const line of text.split('\r\n')) {
    const stat = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (stat !== null && stat[1] !== 'info') {
      calls[stat[1] as string] = Number(stat[2])
      commands += Number(stat[2])
      usec += Number(stat[3])
    }
    const read = /^total_reads_processed:(\d+)/.exec(line)
    if (read !== null) reads = Number(read[1])
  }
  return { calls, usec, commands, reads }
}

export interface RedisDelta {
  /** Calls per command during the run. */
  calls: Record<string, number>
  commands: number
  usec: number
  /** Read events, less the one of the closing INFO. */
  reads: number
}

export function redisDelta (before: RedisSnapshot, after: RedisSnapshot): RedisDelta {
  const calls: Record<string, number> = {}
  for (const [name, count] of Object.entries(after.calls)) {
    const delta = count - (before.calls[name] ?? 0)
    if (delta > 0) calls[name] = delta
  }
  return { calls, commands: after.commands - before.commands, usec: after.usec - before.usec, reads: after.reads - before.reads - 1 }
}

// ---------------------------------------------------------------- /proc

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** Resets the process's peak resident set (VmHWM) to its current RSS; false where the kernel refuses. */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** VmHWM, the peak resident set since start or the last reset, in MB. */
export function peakRssMb (pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

function statFields (pid: number | string): string[] | undefined {
  try {
    // The command name (field 2) may hold spaces: split after its closing parenthesis (fields 3 on).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) the process has used. */
export function cpuSeconds (pid: number): number {
  const fields = statFields(pid)
  return fields === undefined ? 0 : (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/**
 * CPU seconds of a process and its children: PostgreSQL's backends are children of the postmaster.
 * Live children are read one by one; those that exited (the pool closes idle connections) are in the
 * postmaster's cutime and cstime, so that the total never goes backwards.
 */
export function treeCpuSeconds (pid: number): number {
  const own = statFields(pid)
  if (own === undefined) return 0
  let total = (Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) / CLOCK_TICKS
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(entry)
    if (fields !== undefined && Number(fields[1]) === pid) total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  }
  return total
}

/** Busy, stolen (by the hypervisor) and total jiffies of the whole machine, from /proc/stat. */
export function machineTicks (): { busy: number, steal: number, total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = values.reduce((a, b) => a + b, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  const steal = values[7] ?? 0
  return { busy: total - idle - steal, steal, total }
}
