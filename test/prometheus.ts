// A strict reader of the Prometheus text exposition format (version 0.0.4), written apart from prom-client
// so that it checks what a scraper would: every line is a HELP, a TYPE, or a sample of a family declared
// before it, with well-formed names, labels and values; histogram buckets are cumulative up to `_count`.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
export interface Sample { name: string, labels: Record<string, string>, value: number }
export interface Family { name: string, help: string, type: MetricType, samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const META = /^# (HELP|TYPE) (\S+)(?: (.*))?$/
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/y
// Prometheus reads values with Go's strconv.ParseFloat, which takes Inf and NaN in any case (prom-client writes `Nan`).
const VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|[+-]?inf|nan)$/i
const TYPES: MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped']
const SUFFIXES: Record<MetricType, string[]> = {
  counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count']
}

function parseLabels (text: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {}
  LABEL.lastIndex = 0
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text) ?? fail('malformed labels')
    const [, name, raw] = match as unknown as [string, string, string]
    if (name in labels) fail(`label ${name} twice`)
    labels[name] = raw.replace(/\\(["\\n])/g, (_, c: string) => c === 'n' ? '\n' : c)
  }
  return labels
}

function familyOf (families: Map<string, Family>, name: string): Family | undefined {
  for (const family of families.values()) {
    if (SUFFIXES[family.type].some(suffix => family.name + suffix === name)) return family
  }
  return undefined
}

function checkHistogram (family: Family): void {
  const series = new Map<string, { buckets: number[], count?: number }>()
  for (const { name, labels, value } of family.samples) {
    const { le, ...rest } = labels
    const key = JSON.stringify(rest)
    const entry = series.get(key) ?? { buckets: [] }
    series.set(key, entry)
    if (name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`)
      entry.buckets.push(value)
    } else if (name.endsWith('_count')) entry.count = value
  }
  for (const [key, { buckets, count }] of series) {
    if (buckets.some((value, i) => i > 0 && value < buckets[i - 1]!)) throw new Error(`${family.name}${key}: buckets are not cumulative`)
    if (buckets.at(-1) !== count) throw new Error(`${family.name}${key}: the +Inf bucket is not _count`)
  }
}

/** Parses an exposition; throws, naming the line, on anything a Prometheus server would reject. */
export function parsePrometheus (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  text.split('\n').forEach((line, i) => {
    const fail = (why: string): never => { throw new Error(`line ${i + 1}: ${why}: ${line}`) }
    if (line === '') return
    const meta = META.exec(line)
    if (meta !== null) {
      const [, kind, name, rest = ''] = meta as unknown as [string, 'HELP' | 'TYPE', string, string | undefined]
      if (!NAME.test(name)) fail('bad metric name')
      const family = families.get(name) ?? { name, help: '', type: 'untyped', samples: [] }
      if (kind === 'HELP') family.help = rest
      else if (TYPES.includes(rest as MetricType) && family.samples.length === 0) family.type = rest as MetricType
      else fail('bad TYPE')
      families.set(name, family)
      return
    }
    if (line.startsWith('#')) return
    const [, name, labels, value] = (SAMPLE.exec(line) ?? fail('not a sample')) as unknown as [string, string, string | undefined, string]
    if (!VALUE.test(value)) fail('bad value')
    const family = familyOf(families, name) ?? fail('a sample of no declared family')
    family.samples.push({ name, labels: labels === undefined ? {} : parseLabels(labels, fail), value: Number(value) })
  })
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family)
  return families
}

/** The value of the sample with exactly these labels (for a histogram, name its `_count` or `_sum`). */
export function valueOf (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const same = (a: Record<string, string>): boolean =>
    Object.keys(a).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => a[k] === v)
  return familyOf(families, name)?.samples.find(sample => sample.name === name && same(sample.labels))?.value
}
