import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  const { registry } = fastify.metrics

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

export default metrics
