// Aggregation of the samples into medians and ratios, the printed table, the targets, and the chart.
import type { Latency, LoadResult } from './load.js'

export type ScenarioId = 'baseline' | 'hot' | 'page' | 'logout' | 'login' | 'redis-down'

/** One run of one scenario: autocannon's result, with what the bench measured around it. */
export interface Sample extends LoadResult {
  scenario: ScenarioId
  round: number
  connections: number
  /** Statuses the scenario does not expect (a 429 on the hot path, say), and connection errors. */
  unexpected: number
  /** Redis's side (INFO): null while Redis is stopped, and for the baseline (which does not use Redis). */
  redis: null | {
    /** Commands Redis executed, the ones that scripts run inside Redis included (INFO commandstats). */
    executedPerRequest: number
    callsPerRequest: Record<string, number>
    /** Redis's read events per request: the network round trips as Redis saw them. */
    readsPerRequest: number
    /** Redis CPU time spent in commands, microseconds per request. */
    usecPerRequest: number
  }
  /** The service's side (bench/redis-probe.ts): null for the baseline, or when run without the probe. */
  client: null | {
    /** Commands the service sent (a script is one), or tried to send while Redis is stopped. */
    commandsPerRequest: number
    byCommandPerRequest: Record<string, number>
    /** Writes to its Redis sockets: flights to Redis. */
    writesPerRequest: number
  }
  peakRssMb: number | null
  /** CPU use during the run, in % of one core (machine: % of all cores). */
  cpu: { server: number, redis: number | null, postgres: number, machine: number, steal: number, bench: number, other: number }
  logLinesPerRequest: number
}

export interface ScenarioSummary {
  id: ScenarioId
  title: string
  /** What the figures mean when it is not one request (the logout scenario's pairs). */
  note: string
  rounds: number
  connections: number
  requestsPerSecond: number
  p50: number
  p99: number
  /** The slowest response of every round. */
  max: number
  ratio: { requestsPerSecond: number, p50: number, p99: number }
  statuses: Record<string, number>
  errors: number
  unexpected: number
  /** Commands the service sent per request (a script is one): the figure the target counts. */
  redisCommandsPerRequest: number | null
  redisCommandsByName: Record<string, number> | null
  /** Flights from the service to Redis per request. */
  clientWritesPerRequest: number | null
  /** Commands Redis executed per request, script internals included, by name. */
  redisExecutedPerRequest: number | null
  redisExecutedByName: Record<string, number> | null
  redisReadsPerRequest: number | null
  redisUsecPerRequest: number | null
  /** The highest VmHWM of any round. */
  peakRssMb: number | null
  cpu: { server: number, redis: number | null, postgres: number, machine: number, steal: number, bench: number, other: number }
  /** CPU time of the server process per request, microseconds: less sensitive to a busy machine than req/s. */
  serverCpuUsPerRequest: number
  logLinesPerRequest: number
  latencyByStatus: Record<string, { p50: number, p99: number, max: number }>
}

export interface Target {
  name: string
  goal: string
  value: string
  met: boolean
}

export function median (values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const medianOrNull = (values: Array<number | null>): number | null => {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v))
  return present.length === 0 ? null : median(present)
}

export function summarize (samples: Sample[], titles: Record<ScenarioId, { title: string, note: string }>): ScenarioSummary[] {
  const order: ScenarioId[] = ['baseline', 'hot', 'page', 'logout', 'login', 'redis-down']
  const base = samples.filter(s => s.scenario === 'baseline')
  const baseRps = median(base.map(s => s.requestsPerSecond))
  const baseP50 = median(base.map(s => s.latency.p50))
  const baseP99 = median(base.map(s => s.latency.p99))
  const summaries: ScenarioSummary[] = []
  for (const id of order) {
    const runs = samples.filter(s => s.scenario === id)
    if (runs.length === 0) continue
    const sum = (pick: (s: Sample) => Record<string, number>): Record<string, number> => {
      const total: Record<string, number> = {}
      for (const run of runs) for (const [k, v] of Object.entries(pick(run))) total[k] = (total[k] ?? 0) + v
      return total
    }
    const mean = (maps: Array<Record<string, number>>): Record<string, number> | null => {
      if (maps.length === 0) return null
      const total: Record<string, number> = {}
      for (const map of maps) for (const [k, v] of Object.entries(map)) total[k] = (total[k] ?? 0) + v / maps.length
      return total
    }
    const byStatus: Record<string, { p50: number, p99: number, max: number }> = {}
    for (const status of new Set(runs.flatMap(r => Object.keys(r.latencyByStatus)))) {
      const of = runs.map(r => r.latencyByStatus[status]).filter((l): l is Latency => l !== undefined)
      byStatus[status] = { p50: median(of.map(l => l.p50)), p99: median(of.map(l => l.p99)), max: Math.max(...of.map(l => l.max)) }
    }
    const rps = median(runs.map(s => s.requestsPerSecond))
    const p50 = median(runs.map(s => s.latency.p50))
    const p99 = median(runs.map(s => s.latency.p99))
    const rss = runs.map(r => r.peakRssMb).filter((v): v is number => v !== null)
    summaries.push({
      id,
      title: titles[id].title,
      note: titles[id].note,
      rounds: runs.length,
      connections: runs[0]?.connections ?? 0,
      requestsPerSecond: rps,
      p50,
      p99,
      max: Math.max(...runs.map(s => s.latency.max)),
      ratio: { requestsPerSecond: rps / baseRps, p50: p50 / baseP50, p99: p99 / baseP99 },
      statuses: sum(r => r.statuses),
      errors: runs.reduce((a, r) => a + r.errors, 0),
      unexpected: runs.reduce((a, r) => a + r.unexpected, 0),
      redisCommandsPerRequest: medianOrNull(runs.map(r => r.client?.commandsPerRequest ?? null)),
      redisCommandsByName: mean(runs.flatMap(r => r.client === null ? [] : [r.client.byCommandPerRequest])),
      clientWritesPerRequest: medianOrNull(runs.map(r => r.client?.writesPerRequest ?? null)),
      redisExecutedPerRequest: medianOrNull(runs.map(r => r.redis?.executedPerRequest ?? null)),
      redisExecutedByName: mean(runs.flatMap(r => r.redis === null ? [] : [r.redis.callsPerRequest])),
      redisReadsPerRequest: medianOrNull(runs.map(r => r.redis?.readsPerRequest ?? null)),
      redisUsecPerRequest: medianOrNull(runs.map(r => r.redis?.usecPerRequest ?? null)),
      peakRssMb: rss.length === 0 ? null : Math.max(...rss),
      cpu: {
        server: median(runs.map(r => r.cpu.server)),
        redis: medianOrNull(runs.map(r => r.cpu.redis)),
        postgres: median(runs.map(r => r.cpu.postgres)),
        machine: median(runs.map(r => r.cpu.machine)),
        steal: median(runs.map(r => r.cpu.steal)),
        bench: median(runs.map(r => r.cpu.bench)),
        other: median(runs.map(r => r.cpu.other))
      },
      serverCpuUsPerRequest: median(runs.map(r => r.cpu.server / 100 * 1e6 / Math.max(r.requestsPerSecond, 1e-9))),
      logLinesPerRequest: median(runs.map(r => r.logLinesPerRequest)),
      latencyByStatus: byStatus
    })
  }
  return summaries
}

export function targets (summaries: ScenarioSummary[]): Target[] {
  const hot = summaries.find(s => s.id === 'hot')
  const down = summaries.find(s => s.id === 'redis-down')
  const service = summaries.filter(s => s.id !== 'baseline')
  const result: Target[] = []
  if (hot !== undefined) {
    const ratio = hot.ratio.requestsPerSecond
    result.push({ name: 'hot path throughput', goal: '>= 50 % of baseline (stretch 60 %)', value: `${pct(ratio)} of baseline`, met: ratio >= 0.5 })
    result.push({ name: 'hot path p99', goal: '<= 3x baseline p99', value: `${fixed(hot.ratio.p99, 2)}x (${ms(hot.p99)} vs ${ms(hot.p99 / hot.ratio.p99)})`, met: hot.ratio.p99 <= 3 })
    const commands = hot.redisCommandsPerRequest
    result.push({
      name: 'hot path Redis commands',
      goal: '<= 3 per request, fewer round trips where batching allows',
      value: commands === null
        ? 'n/a'
        : `${fixed(commands, 2)} commands sent (${fixed(hot.redisExecutedPerRequest ?? Number.NaN, 2)} executed in Redis, scripts' own calls included), ${fixed(hot.clientWritesPerRequest ?? Number.NaN, 2)} flights${(hot.clientWritesPerRequest ?? 0) >= commands * 0.95 ? ' (one per command: no batching)' : ''}, ${fixed(hot.redisReadsPerRequest ?? Number.NaN, 2)} Redis reads per request`,
      met: commands !== null && commands <= 3.05
    })
  }
  const measured = service.filter((s): s is ScenarioSummary & { peakRssMb: number } => s.peakRssMb !== null)
  if (measured.length > 0) {
    const top = measured.reduce((a, b) => b.peakRssMb > a.peakRssMb ? b : a)
    const others = measured.filter(s => s !== top).map(s => `${s.id} ${fixed(s.peakRssMb, 0)}`).join(', ')
    result.push({ name: 'peak RSS under load', goal: '< 200 MB', value: `${fixed(top.peakRssMb, 1)} MB in ${top.id} (${others})`, met: top.peakRssMb < 200 })
  }
  if (down !== undefined) {
    result.push({ name: 'Redis stopped: slowest request', goal: '<= 250 ms, answers 200', value: `${ms(down.max)} (${down.unexpected} unexpected answers)`, met: down.max <= 250 && down.unexpected === 0 })
  }
  return result
}

// ---------------------------------------------------------------- text

export const fixed = (value: number, digits: number): string => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
export const pct = (ratio: number): string => Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)} %` : 'n/a'
export const ms = (value: number): string => Number.isFinite(value) ? `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms` : 'n/a'

export function table (summaries: ScenarioSummary[]): string {
  const header = ['scenario', 'conn', 'req/s', 'vs base', 'p50 ms', 'p99 ms', 'p99 vs base', 'max ms', 'Redis cmd/req', 'executed', 'flights', 'reads', 'peak RSS MB', 'svc CPU us/req', 'CPU svc/redis/pg/other %', 'unexpected']
  const rows = summaries.map(s => [
    s.id,
    String(s.connections),
    fixed(s.requestsPerSecond, 0),
    s.id === 'baseline' ? '1' : pct(s.ratio.requestsPerSecond),
    fixed(s.p50, 2),
    fixed(s.p99, 2),
    s.id === 'baseline' ? '1' : `${fixed(s.ratio.p99, 2)}x`,
    fixed(s.max, 1),
    s.redisCommandsPerRequest === null ? '-' : fixed(s.redisCommandsPerRequest, 2),
    s.redisExecutedPerRequest === null ? '-' : fixed(s.redisExecutedPerRequest, 2),
    s.clientWritesPerRequest === null ? '-' : fixed(s.clientWritesPerRequest, 2),
    s.redisReadsPerRequest === null ? '-' : fixed(s.redisReadsPerRequest, 2),
    s.peakRssMb === null ? '-' : fixed(s.peakRssMb, 1),
    fixed(s.serverCpuUsPerRequest, 0),
    `${fixed(s.cpu.server, 0)}/${s.cpu.redis === null ? '-' : fixed(s.cpu.redis, 0)}/${fixed(s.cpu.postgres, 0)}/${fixed(s.cpu.other, 0)}`,
    String(s.unexpected + s.errors)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')
  return [line(header), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------- chart

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Two panels of horizontal bars on linear scales, so that lengths compare as ratios do: throughput and
 * p99 latency per scenario, with the hot path's targets as dashed lines (50 % of the baseline's
 * throughput, 3x its p99). A bar beyond its axis (login's p99, bounded by the password hash) is cut and marked.
 */
export function chart (summaries: ScenarioSummary[], caption: string): string {
  const width = 960
  const rowHeight = 28
  const labelWidth = 180
  const gap = 70
  const panelWidth = (width - labelWidth - gap - 30) / 2
  const top = 78
  const plotHeight = summaries.length * rowHeight
  const height = top + plotHeight + 64
  const colors: Record<ScenarioId, string> = { baseline: '#8a8a8a', hot: '#2f6fdf', page: '#4a9a5b', logout: '#b07b2c', login: '#8d5bb5', 'redis-down': '#c2453d' }
  const base = summaries.find(s => s.id === 'baseline')
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">PulseWatch npm run bench: medians per scenario</text>`)
  parts.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${escape(caption)}</text>`)

  const niceMax = (value: number): number => {
    const power = 10 ** Math.floor(Math.log10(Math.max(value, 1e-9)))
    return ([1, 2, 2.5, 5, 10].map(m => m * power).find(m => m >= value) ?? 10 * power)
  }
  const panel = (x0: number, title: string, axisMax: number, value: (s: ScenarioSummary) => number, label: (s: ScenarioSummary) => string, target?: { at: number, text: string }): void => {
    const scale = (v: number): number => Math.min(v / axisMax, 1) * panelWidth
    parts.push(`<text x="${x0 + panelWidth / 2}" y="${top - 14}" text-anchor="middle" font-weight="bold">${escape(title)}</text>`)
    for (let i = 0; i <= 5; i++) {
      const tick = axisMax * i / 5
      const x = x0 + scale(tick)
      parts.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotHeight}" stroke="#e3e3e3"/>`)
      parts.push(`<text x="${x.toFixed(1)}" y="${top + plotHeight + 14}" text-anchor="middle" fill="#555">${tick >= 1000 ? `${+(tick / 1000).toFixed(1)}k` : +tick.toFixed(1)}</text>`)
    }
    summaries.forEach((s, i) => {
      const y = top + i * rowHeight + 5
      const v = value(s)
      const w = scale(v)
      parts.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${rowHeight - 10}" fill="${colors[s.id]}"/>`)
      const cut = v > axisMax
      if (cut) parts.push(`<path d="M${(x0 + w - 10).toFixed(1)} ${y - 1} l6 ${rowHeight - 8} M${(x0 + w - 5).toFixed(1)} ${y - 1} l6 ${rowHeight - 8}" stroke="#fff" stroke-width="3"/>`)
      const text = label(s) + (cut ? ', axis cut' : '')
      const inside = w > panelWidth * 0.6
      parts.push(`<text x="${(inside ? x0 + w - (cut ? 22 : 6) : x0 + w + 4).toFixed(1)}" y="${y + rowHeight / 2}" text-anchor="${inside ? 'end' : 'start'}" fill="${inside ? '#fff' : '#222'}">${escape(text)}</text>`)
    })
    if (target !== undefined && target.at <= axisMax) {
      const x = x0 + scale(target.at)
      parts.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${top + plotHeight}" stroke="#d11" stroke-dasharray="5 3" stroke-width="1.5"/>`)
      parts.push(`<text x="${x.toFixed(1)}" y="${top + plotHeight + 28}" text-anchor="middle" fill="#d11">${escape(target.text)}</text>`)
    }
  }

  summaries.forEach((s, i) => {
    parts.push(`<text x="${labelWidth - 8}" y="${top + i * rowHeight + rowHeight / 2 + 4}" text-anchor="end">${escape(s.title)}</text>`)
  })
  const rpsMax = niceMax(Math.max(...summaries.map(s => s.requestsPerSecond)))
  // The p99 axis fits every scenario but login, whose p99 is the password hash's by design.
  const p99Max = niceMax(Math.max(...summaries.filter(s => s.id !== 'login').map(s => s.p99), base === undefined ? 1 : base.p99 * 3))
  panel(labelWidth, 'throughput, requests/s', rpsMax, s => s.requestsPerSecond,
    s => s.id === 'baseline' ? fixed(s.requestsPerSecond, 0) : `${fixed(s.requestsPerSecond, 0)} (${pct(s.ratio.requestsPerSecond)})`,
    base === undefined ? undefined : { at: base.requestsPerSecond / 2, text: 'target: hot path >= 50 % of baseline' })
  panel(labelWidth + panelWidth + gap, 'p99 latency, ms', p99Max, s => s.p99,
    s => s.id === 'baseline' ? ms(s.p99) : `${ms(s.p99)} (${fixed(s.ratio.p99, 1)}x)`,
    base === undefined ? undefined : { at: base.p99 * 3, text: 'target: hot path <= 3x baseline p99' })
  parts.push(`<text x="${labelWidth}" y="${height - 8}" fill="#555">Ratios in parentheses are to the bare Fastify baseline in the same run. Figures: the JSON report beside this file.</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

/** The figures as Markdown, for the README: the table, then the targets. */
export function markdown (summaries: ScenarioSummary[], goals: Target[]): string {
  const rows = summaries.map(s => `| ${s.title} | ${s.connections} | ${fixed(s.requestsPerSecond, 0)} | ${s.id === 'baseline' ? '1' : pct(s.ratio.requestsPerSecond)} | ${fixed(s.p50, 2)} | ${fixed(s.p99, 2)} | ${s.id === 'baseline' ? '1' : `${fixed(s.ratio.p99, 2)}x`} | ${fixed(s.max, 1)} | ${s.redisCommandsPerRequest === null ? '-' : `${fixed(s.redisCommandsPerRequest, 2)} / ${s.redisExecutedPerRequest === null ? '-' : fixed(s.redisExecutedPerRequest, 2)}`} | ${s.clientWritesPerRequest === null ? '-' : fixed(s.clientWritesPerRequest, 2)} / ${s.redisReadsPerRequest === null ? '-' : fixed(s.redisReadsPerRequest, 2)} | ${s.peakRssMb === null ? '-' : fixed(s.peakRssMb, 0)} | ${fixed(s.serverCpuUsPerRequest, 0)} |`)
  return [
    '| scenario | conn | req/s | vs baseline | p50 ms | p99 ms | p99 vs baseline | max ms | Redis commands/req, sent / executed | flights / Redis reads per req | peak RSS MB | server CPU µs/req |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '| target | goal | measured | |',
    '| --- | --- | --- | --- |',
    ...goals.map(g => `| ${g.name} | ${g.goal} | ${g.value} | ${g.met ? 'met' : '**missed**'} |`)
  ].join('\n') + '\n'
}
