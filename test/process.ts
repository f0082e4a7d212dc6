import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { freePort } from '../scripts/servers.js'
import { waitFor } from '../scripts/wait-for.js'

export interface ServerProcess {
  child: ChildProcess
  url: string
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or signal name) and how long after `since` it came. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * tap adds its process-tracking and coverage loaders to every child process (NODE_OPTIONS,
 * NODE_V8_COVERAGE). A child that loads the app's sources under tsx would then report coverage of
 * the same files with other source maps, and tap keeps one at random. Through `env -u` the command
 * runs with exactly the environment given, as it would in production.
 */
export function withoutTapLoader (command: string, args: string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', command, ...args]]
}

/** Runs server.ts (or another entry, worker.ts) from source in a child process, as `npm run dev` does but without the local servers. */
export async function spawnServer (t: Test, env: Record<string, string>, entry = 'server.ts'): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(...withoutTapLoader(process.execPath, ['--import', 'tsx', entry]), {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => out, stderr: () => err, exited }
}

/** Waits until the process answers /healthz; fails if it exits first. */
export async function listening (server: ServerProcess, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}`)
    return await fetch(`${server.url}/healthz`).then(res => res.ok, () => false)
  }, { what: `${server.url} to answer /healthz`, timeoutMs })
}

/** Waits until the process has written a line matching `pattern` to its stdout. */
export async function printed (server: ServerProcess, pattern: RegExp, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => pattern.test(server.stdout()), { what: () => `${pattern} in the server's output: ${server.stdout().slice(-500)}`, timeoutMs })
}
