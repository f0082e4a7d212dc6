// The machine's programs that `npm run dev` and `npm test` need (redis-server, PostgreSQL, Debian's
// chromium for the docs browser test), and how to get them: apt-get when run as root, else a line
// with the command to run.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

export const CHROMIUM = '/usr/bin/chromium'

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

export interface Needed {
  /** Who speaks, as the line's first word: `dev`, `test`. */
  who: string
  /** What is missing, as the start of a sentence: "chromium (for test/plugins/external/swagger-browser.test.ts) is not installed". */
  missing: string
  present: () => boolean
  packages: string[]
}

let listsUpdated = false

/** True when present, or installed now with apt-get (as root); else prints the command to run and returns false. */
export function ensureInstalled ({ who, missing, present, packages }: Needed): boolean {
  if (present()) return true
  const command = `apt-get install -y ${packages.join(' ')}`
  if (process.getuid?.() !== 0) {
    console.error(`${who}: ${missing}. Install it with: sudo ${command}`)
    return false
  }
  console.log(`${who}: installing ${packages.join(' ')} with apt-get…`)
  const apt = (args: string[]): number | null =>
    spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status
  listsUpdated ||= apt(['update', '-qq']) === 0
  if (!listsUpdated || apt(['install', '-y', '-qq', '--no-install-recommends', ...packages]) !== 0 || !present()) {
    console.error(`${who}: ${missing}, and \`${command}\` failed`)
    return false
  }
  return true
}
