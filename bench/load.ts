// One load run with autocannon, used programmatically. autocannon's own histogram keeps whole
// milliseconds, too coarse for a 1-4 ms server, so every response time (a float, in ms) is also
// recorded here from the instance's `response` event, and the percentiles are computed from them,
// per status code as well (the logout scenario tells its 204s from its 401s that way).
import autocannon from 'autocannon'

export interface LoadOptions {
  url: string
  connections: number
  /** Seconds. */
  duration: number
  method?: autocannon.Request['method']
  headers?: Record<string, string>
  body?: string
  /** A sequence that each connection repeats in order (overrides method, headers and body). */
  requests?: autocannon.Request[]
  /** A fixed offered load, requests/s over all connections, instead of as fast as the server answers. */
  overallRate?: number
}

export interface Latency {
  /** Milliseconds. */
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export interface LoadResult {
  /** Completed responses. */
  requests: number
  /** Seconds actually run. */
  duration: number
  requestsPerSecond: number
  latency: Latency
  statuses: Record<string, number>
  /** Latency of the responses of each status code. */
  latencyByStatus: Record<string, Latency>
  /** Connection errors, timeouts included. */
  errors: number
  timeouts: number
  /** The slowest responses: when they ended (seconds after the start) and how long they took (ms). */
  slowest: Array<{ at: number, ms: number, status: number }>
}

const SLOWEST = 5

/** Collects floats without reallocating on every push. */
class Samples {
  private values = new Float64Array(1 << 16)
  length = 0

  push (value: number): void {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.length++] = value
  }

  summary (): Latency {
    const sorted = this.values.slice(0, this.length).sort()
    const at = (q: number): number => sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0
    let sum = 0
    for (const value of sorted) sum += value
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length === 0 ? 0 : sorted[sorted.length - 1] ?? 0, mean: sorted.length === 0 ? 0 : sum / sorted.length }
  }
}

export async function runLoad (options: LoadOptions): Promise<LoadResult> {
  const all = new Samples()
  const byStatus = new Map<number, Samples>()
  const slowest: Array<{ at: number, ms: number, status: number }> = []
  const started = performance.now()
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: options.url,
      connections: options.connections,
      duration: options.duration,
      pipelining: 1,
      timeout: 10,
      method: options.method ?? 'GET',
      ...(options.headers !== undefined ? { headers: options.headers } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.requests !== undefined ? { requests: options.requests } : {}),
      ...(options.overallRate !== undefined ? { overallRate: options.overallRate } : {})
    }, (err: unknown, done: autocannon.Result) => err === null || err === undefined ? resolve(done) : reject(err))
    instance.on('response', (_client: autocannon.Client, statusCode: number, _bytes: number, responseTime: number) => {
      all.push(responseTime)
      let samples = byStatus.get(statusCode)
      if (samples === undefined) {
        samples = new Samples()
        byStatus.set(statusCode, samples)
      }
      samples.push(responseTime)
      if (slowest.length < SLOWEST || responseTime > (slowest[slowest.length - 1]?.ms ?? 0)) {
        slowest.push({ at: (performance.now() - started) / 1000, ms: responseTime, status: statusCode })
        slowest.sort((a, b) => b.ms - a.ms)
        slowest.length = Math.min(slowest.length, SLOWEST)
      }
    })
  })
  const statuses: Record<string, number> = {}
  const latencyByStatus: Record<string, Latency> = {}
  for (const [status, samples] of byStatus) {
    statuses[String(status)] = samples.length
    latencyByStatus[String(status)] = samples.summary()
  }
  return {
    requests: all.length,
    duration: result.duration,
    requestsPerSecond: all.length / result.duration,
    latency: all.summary(),
    statuses,
    latencyByStatus,
    errors: result.errors,
    timeouts: result.timeouts,
    slowest: slowest.map(s => ({ at: Math.round(s.at * 1000) / 1000, ms: Math.round(s.ms * 100) / 100, status: s.status }))
  }
}
