import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Registry } from 'prom-client'

interface MetricsRouteOptions {
  registry: Registry
}

/** GET /metrics of a registry: mounted beside the API, or alone on the METRICS_PORT server (server.ts). */
export const metricsRoute: FastifyPluginAsyncTypebox<MetricsRouteOptions> = async (fastify, { registry }) => {
  fastify.get('/metrics', {
    config: { rateLimit: false },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics of this instance',
      response: { 200: { description: 'The Prometheus text exposition format', content: { [registry.contentType]: { schema: Type.String() } } } }
    }
  }, async (_request, reply) => {
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

// With METRICS_PORT set, /metrics is served only there, so that an ingress in front of PORT cannot expose it.
const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  if (fastify.config.METRICS_PORT === undefined) await fastify.register(metricsRoute, { registry: fastify.metrics.registry })
}

export default metrics
