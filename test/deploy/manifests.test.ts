// Every rendered manifest is written into a TypeScript module as an object literal typed with the
// kubernetes-types of its apiVersion and kind, and compiled: a misspelt field, a wrong type or an
// unknown kind fails the compile, as the API server would reject the object.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import { ROOT } from '../../scripts/tools.js'
import { DEV, MAJORS, PROD, render, type Manifest } from './support.js'

const TYPES = join(ROOT, 'node_modules', 'kubernetes-types')

/** `apps/v1` → apps/v1, `v1` → core/v1, `networking.k8s.io/v1` → networking/v1. */
function typesModule (apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion]
  const path = `${(group ?? '').replace(/\.k8s\.io$/, '')}/${version ?? ''}`
  if (!existsSync(join(TYPES, `${path}.d.ts`))) throw new Error(`kubernetes-types has no ${apiVersion}`)
  return `kubernetes-types/${path}.js`
}

/** One module holding each manifest as a typed constant, after a `// label` comment that names it in errors. */
function moduleSource (manifests: Array<[label: string, manifest: Manifest]>): string {
  const modules = [...new Set(manifests.map(([, m]) => typesModule(m.apiVersion)))]
  const imports = modules.map((path, i) => `import type * as k${i} from '${path}'`)
  const consts = manifests.map(([label, m], i) =>
    `// ${label}\nexport const m${i}: k${modules.indexOf(typesModule(m.apiVersion))}.${m.kind} = ${JSON.stringify(m, null, 2)}`)
  return [...imports, ...consts].join('\n')
}

// A virtual file inside the repository, so that module resolution finds node_modules/kubernetes-types.
const FILE = join(ROOT, 'test', 'deploy', '__rendered-manifests__.ts')
const OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts'],
  types: []
}
// The library and kubernetes-types files are parsed once for all the compiles of this file.
const parsed = new Map<string, ts.SourceFile | undefined>()

/** The compiler's errors for the module, one line each. */
function typeErrors (source: string): string[] {
  const host = ts.createCompilerHost(OPTIONS)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => {
    if (name === FILE) return ts.createSourceFile(name, source, language)
    if (!parsed.has(name)) parsed.set(name, getSourceFile(name, language, ...rest))
    return parsed.get(name)
  }
  const fileExists = host.fileExists.bind(host)
  host.fileExists = name => name === FILE || fileExists(name)
  const program = ts.createProgram([FILE], OPTIONS, host)
  const lines = source.split('\n')
  return ts.getPreEmitDiagnostics(program).map(d => {
    const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0
    const label = lines.slice(0, line + 1).findLast(l => l.startsWith('// '))?.slice(3) ?? 'imports'
    return `${label}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`
  })
}

t.test('the type check rejects a misspelt field, a wrong type and an unknown kind, and passes their well-formed control', async t => {
  const deployment = (container: Record<string, unknown>): Manifest => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'broken' },
    spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ name: 'c', ...container }] } } }
  })
  const errors = typeErrors(moduleSource([
    ['misspelt', deployment({ readinesProbe: {} })],
    ['wrong type', deployment({ ports: [{ containerPort: '3000' }] })],
    ['unknown kind', { apiVersion: 'v1', kind: 'Pods', metadata: { name: 'x' } }],
    ['control', deployment({ ports: [{ containerPort: 3000 }], readinessProbe: {} })]
  ])).join('\n')
  t.match(errors, /^misspelt: .*readinesProbe/m)
  t.match(errors, /^wrong type: .*not assignable to type 'number'/m)
  t.match(errors, /^unknown kind: .*Pods/m)
  t.notMatch(errors, /^control:/m)
})

for (const major of MAJORS) {
  t.test(`every manifest helm ${major} renders for dev and prod values type-checks against the Kubernetes API types`, async t => {
    const sets: Array<[string, Manifest[]]> = [
      ['dev', await render(major, [DEV])],
      ['prod', await render(major, [PROD])],
      ['prod with ingress', await render(major, [PROD], ['ingress.enabled=true', 'ingress.tls[0].secretName=tls', 'ingress.tls[0].hosts[0]=pulsewatch.local'])]
    ]
    for (const [name, manifests] of sets) t.ok(manifests.length >= 6, `${name}: ${manifests.map(m => m.kind).join(', ')}`)
    const labelled = sets.flatMap(([name, manifests]) => manifests.map(m => [`${name} ${m.kind} ${m.metadata.name}`, m] as [string, Manifest]))
    t.same(typeErrors(moduleSource(labelled)), [])
  })
}
