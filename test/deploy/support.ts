import type { Deployment } from 'kubernetes-types/apps/v1.js'
import type { Container } from 'kubernetes-types/core/v1.js'
// Shared by the deployment tests: running the pinned helm binaries and reading what they render.
import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { CACHE, ROOT, helm } from '../../scripts/tools.js'

export const CHART = join(ROOT, 'charts', 'pulsewatch')
export const DEV = join(CHART, 'values-dev.yaml')
export const PROD = join(CHART, 'values-prod.yaml')
export const MAJORS = [3, 4] as const
export type Major = typeof MAJORS[number]

export interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }
  [field: string]: unknown
}

export interface HelmResult { code: number, stdout: string, stderr: string }

// helm's own config, cache and data folders stay inside .cache, away from the user's.
const HOME = join(CACHE, 'helm', 'home')

export async function runHelm (major: Major, args: string[]): Promise<HelmResult> {
  const binary = await helm(major)
  mkdirSync(HOME, { recursive: true })
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HELM_CONFIG_HOME: join(HOME, 'config'),
    HELM_CACHE_HOME: join(HOME, 'cache'),
    HELM_DATA_HOME: join(HOME, 'data')
  }
  return await new Promise(resolve => {
    execFile(binary, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** `helm template` with values files and --set pairs; release `pw` in namespace `pulsewatch`. */
export function templateArgs (valuesFiles: string[], set: string[] = []): string[] {
  return ['template', 'pw', CHART, '--namespace', 'pulsewatch', ...valuesFiles.flatMap(f => ['-f', f]), ...set.flatMap(s => ['--set', s])]
}

export async function render (major: Major, valuesFiles: string[], set: string[] = []): Promise<Manifest[]> {
  const result = await runHelm(major, templateArgs(valuesFiles, set))
  if (result.code !== 0) throw new Error(`helm ${major} template failed: ${result.stderr}`)
  return parseManifests(result.stdout)
}

export function parseManifests (yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map(doc => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`)
      return doc.toJS() as Manifest | null
    })
    .filter((doc): doc is Manifest => doc !== null)
}

/** The one manifest of that kind (and name, if given), typed as the caller says; throws when there is not exactly one. */
export function one<T> (manifests: Manifest[], kind: string, name?: string): T {
  const found = manifests.filter(m => m.kind === kind && (name === undefined || m.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`)
  return found[0] as T
}

export function component (manifest: Manifest): string | undefined {
  return manifest.metadata.labels?.['app.kubernetes.io/component']
}

export function decode (data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]))
}

/** True when every label of the selector is on the pod: the selector picks that pod. */
export function selects (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value)
}

/** The API's objects are named after the release `pw`. */
export const API = 'pw-pulsewatch'
export const apiContainer = (d: Deployment): Container => d.spec?.template.spec?.containers[0] as Container
