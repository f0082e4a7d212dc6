// Reads the Dockerfile and .dockerignore, and carries out the Dockerfile's stages on this machine
// (no Docker engine runs here): COPY from the build context as .dockerignore filters it, RUN with
// `sh -c`, COPY --from between stages, each stage in a folder that stands for its root filesystem.
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, join, posix, relative } from 'node:path'
import { DockerfileParser, ModifiableInstruction, type From, type Instruction, type JSONInstruction, type PropertyInstruction } from 'dockerfile-ast'
import { ROOT } from '../../scripts/tools.js'

export interface Stage { index: number, name: string | null, from: From, instructions: Instruction[] }

export function readStages (text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')): Stage[] {
  const stages: Stage[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From
      stages.push({ index: stages.length, name: from.getBuildStage(), from, instructions: [] })
    } else {
      const stage = stages.at(-1)
      if (stage === undefined) throw new Error(`${instruction.getKeyword()} before the first FROM`)
      stage.instructions.push(instruction)
    }
  }
  return stages
}

export const of = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter(i => i.getKeyword() === keyword)
export const args = (instruction: Instruction): string[] => instruction.getArguments().map(a => a.getValue())
export const properties = (instruction: Instruction): Array<[string, string]> =>
  (instruction as PropertyInstruction).getProperties().map(p => [p.getName(), p.getValue() ?? ''])

export const flag = (instruction: Instruction, name: string): string | null | undefined =>
  instruction instanceof ModifiableInstruction ? instruction.getFlags().find(f => f.getName() === name)?.getValue() : undefined

/** The exec form's words (`["node", "x.js"]`), or undefined for the shell form. */
export function execForm (instruction: Instruction): string[] | undefined {
  const strings = (instruction as JSONInstruction).getJSONStrings()
  return strings.length === 0 ? undefined : strings.map(s => JSON.parse(s.getValue()) as string)
}

function globToRegExp (glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '[') throw new Error('character classes in .dockerignore are not understood by this reader')
    if (c === '*' && glob[i + 1] === '*') {
      i++
      if (glob[i + 1] === '/') { i++; source += '(?:.*/)?' } else source += '.*'
    } else if (c === '*') source += '[^/]*'
    else if (c === '?') source += '[^/]'
    else source += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`)
}

/**
 * Docker's .dockerignore rules: a path is left out when it or a folder above it matches a pattern,
 * `!` brings a path back, the last matching line wins; patterns are relative to the context root.
 */
export function dockerignore (text = readFileSync(join(ROOT, '.dockerignore'), 'utf8')): (path: string) => boolean {
  const rules = text.split('\n').map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#')).map(line => {
    const negate = line.startsWith('!')
    const pattern = posix.normalize(negate ? line.slice(1).trim() : line).replace(/^\/+/, '')
    return { negate, regexp: globToRegExp(pattern) }
  })
  return path => {
    const parts = path.split('/')
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    let ignored = false
    for (const rule of rules) {
      if (candidates.some(candidate => rule.regexp.test(candidate))) ignored = !rule.negate
    }
    return ignored
  }
}

export interface Built { root: string, workdir: string, env: Record<string, string>, user?: string, cmd?: string[] }

import { withoutTapLoader } from '../process.js'

export { withoutTapLoader }

async function sh (command: string, cwd: string, env: Record<string, string>): Promise<void> {
  const child = spawn(...withoutTapLoader('sh', ['-c', command]), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 100_000 })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  if (code !== 0) throw new Error(`RUN ${command} exited with ${code}:\n${output.slice(-4000)}`)
}

/**
 * Carries out every stage into `out` and returns each stage's result. `runEnv` is the environment of
 * RUN (PATH leads to the Node binary the image would have). Flags other than COPY --from and RUN --mount
 * are refused rather than silently ignored.
 */
export async function build (stages: Stage[], out: string, runEnv: Record<string, string>, context = ROOT): Promise<Built[]> {
  const ignored = dockerignore(readFileSync(join(context, '.dockerignore'), 'utf8'))
  const built: Built[] = []
  for (const stage of stages) {
    const result: Built = { root: join(out, `stage-${stage.index}`), workdir: '/', env: {} }
    mkdirSync(result.root, { recursive: true })
    const here = (path: string): string => join(result.root, posix.resolve(result.workdir, path))
    for (const instruction of stage.instructions) {
      const keyword = instruction.getKeyword()
      const flags = instruction instanceof ModifiableInstruction ? instruction.getFlags() : []
      const unknown = flags.filter(f => !(keyword === 'COPY' && f.getName() === 'from') && !(keyword === 'RUN' && f.getName() === 'mount'))
      if (unknown.length > 0) throw new Error(`${keyword} --${unknown[0]?.getName()} is not supported by the test build`)
      if (keyword === 'WORKDIR') {
        result.workdir = posix.resolve(result.workdir, args(instruction)[0] ?? '/')
        mkdirSync(here('.'), { recursive: true })
      } else if (keyword === 'ENV') {
        for (const [name, value] of properties(instruction)) result.env[name] = value
      } else if (keyword === 'COPY') {
        const from = flag(instruction, 'from')
        const source = from == null ? undefined : built[/^\d+$/.test(from) ? Number(from) : stages.findIndex(s => s.name === from)]
        if (from != null && source === undefined) throw new Error(`COPY --from=${from}: no such earlier stage`)
        const words = args(instruction)
        const dest = here(words.at(-1) ?? '.')
        const intoFolder = words.length > 2 || /\/$|^\.$/.test(words.at(-1) ?? '')
        for (const word of words.slice(0, -1)) {
          const src = source === undefined ? join(context, word) : join(source.root, word)
          if (!existsSync(src)) throw new Error(`COPY ${word}: not found`)
          const filter = (path: string): boolean => source !== undefined || relative(context, path) === '' || !ignored(relative(context, path))
          if (!filter(src)) throw new Error(`COPY ${word}: excluded by .dockerignore`)
          const target = statSync(src).isDirectory() || !intoFolder ? dest : join(dest, basename(src))
          mkdirSync(statSync(src).isDirectory() ? target : dirname(target), { recursive: true })
          cpSync(src, target, { recursive: true, filter, verbatimSymlinks: true })
        }
      } else if (keyword === 'RUN') {
        if (execForm(instruction) !== undefined) throw new Error('RUN in exec form is not supported by the test build')
        await sh(instruction.getRawArgumentsContent() ?? '', here('.'), { ...result.env, ...runEnv })
      } else if (keyword === 'USER') {
        result.user = args(instruction)[0]
      } else if (keyword === 'CMD') {
        result.cmd = execForm(instruction)
      } else if (!['EXPOSE', 'STOPSIGNAL', 'LABEL'].includes(keyword)) {
        throw new Error(`${keyword} is not supported by the test build`)
      }
    }
    built.push(result)
  }
  return built
}
