import fp from 'fastify-plugin'
import { setTimeout as sleep } from 'node:timers/promises'

interface Lifecycle {
  /** True from the moment shutdown begins: readiness answers 503 so the load balancer moves on. */
  readonly draining: boolean
}

/**
 * Graceful drain. When close() begins, Fastify already adds `Connection: close` to every answer;
 * we keep serving for SHUTDOWN_DELAY_MS while readiness reports 503 and load balancers stop sending,
 * then Fastify stops listening, closes idle keep-alive connections and waits for requests in flight.
 */
export default fp(async function lifecycle (fastify) {
  const state = { draining: false }
  fastify.decorate('lifecycle', state as Lifecycle)
  fastify.addHook('preClose', async () => {
    state.draining = true
    if (!fastify.server.listening) return
    fastify.log.info({ delayMs: fastify.config.SHUTDOWN_DELAY_MS }, 'draining before close')
    await sleep(fastify.config.SHUTDOWN_DELAY_MS)
  })
}, { name: 'lifecycle' })

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}
