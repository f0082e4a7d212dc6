import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { setFlagsFromString } from 'node:v8'
import app, { serverOptions } from './app.js'
import { configOrExit, refuseToStart } from './config.js'
import { metricsRoute } from './routes/metrics.js'

// Garbage-collector settings for a server of short-lived request objects (read at every GC, so set
// here, before the first request): no pretenuring, which took in-flight request objects for old ones,
// and a slower-growing old generation. Their measured effect is in docs/benchmarks.md.
setFlagsFromString('--no-allocation-site-pretenuring')
setFlagsFromString('--heap-growing-percent=50')

const fail = (message: string): never => refuseToStart('pulsewatch', message)
const config = configOrExit('pulsewatch')

const fastify = Fastify(serverOptions(config))
// METRICS_PORT: /metrics alone on a port of its own, which no ingress routes to (the app leaves it off PORT).
const metrics = config.METRICS_PORT === undefined ? undefined : Fastify({ loggerInstance: fastify.log.child({ server: 'metrics' }) })

closeWithGrace({ delay: config.SHUTDOWN_DELAY_MS + 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) fastify.log.error({ err }, 'closing after an unexpected error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
  await metrics?.close()
})

try {
  await fastify.register(app, { config })
  if (metrics !== undefined) {
    await metrics.register(metricsRoute, { registry: fastify.metrics.registry })
    await metrics.listen({ port: config.METRICS_PORT, host: config.HOST })
  }
  await fastify.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  fail(`cannot start: ${(err as Error).message}`)
}
