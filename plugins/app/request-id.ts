import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'

const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/

/** Keeps a caller's X-Request-Id when it is well formed, so that one id follows a request across services. */
export function genReqId (req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : randomUUID()
}

export default fp(async function requestId (fastify) {
  // A callback hook: on every request, a promise less.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
}, { name: 'request-id' })
