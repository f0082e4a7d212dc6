import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import { setTimeout as sleep } from 'node:timers/promises'
import { errors } from '../plugins/app/errors.js'
import { ErrorSchema } from '../schemas/common.js'

const CHECK_TIMEOUT_MS = 1000
/** How long one round of dependency checks answers every /readyz: at most one round per second. */
const CHECK_REUSE_MS = 1000

const Check = Type.Union([Type.Literal('ok'), Type.Literal('fail')])
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  checks: Type.Object({ redis: Check, postgres: Check })
}, { description: 'Ready; degraded (still 200) while a dependency fails' })

async function check (probe: () => Promise<unknown>): Promise<'ok' | 'fail'> {
  const timeout = sleep(CHECK_TIMEOUT_MS, 'fail' as const, { ref: false })
  return await Promise.race([probe().then(() => 'ok' as const, () => 'fail' as const), timeout])
}

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/healthz', {
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'The process is alive' }) } }
  }, async () => ({ status: 'ok' as const }))

  async function readiness (): Promise<Static<typeof Readiness>> {
    const [redis, postgres] = await Promise.all([
      check(async () => await fastify.redis.ping()),
      check(async () => await fastify.pg.query('SELECT 1'))
    ])
    return { status: redis === 'ok' && postgres === 'ok' ? 'ok' : 'degraded', checks: { redis, postgres } }
  }

  // /readyz is public and unlimited, so it must not be a way to load Redis and PostgreSQL: every call
  // in the second after a round of checks began shares that round, in flight or done, failed or not.
  let round: { started: number, result: Promise<Static<typeof Readiness>> } | undefined
  const shared = async (): Promise<Static<typeof Readiness>> => {
    const now = performance.now()
    if (round === undefined || now - round.started >= CHECK_REUSE_MS) round = { started: now, result: readiness() }
    return await round.result
  }

  // A failing dependency is reported but still answers 200: one shared outage must not pull
  // every replica out of the Service at once. 503 means only "starting or draining".
  fastify.get('/readyz', {
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Readiness, with the state of each dependency', response: { 200: Readiness, 503: { ...ErrorSchema, description: 'Starting, or draining for shutdown' } } }
  }, async () => {
    if (fastify.lifecycle.draining) throw errors.draining()
    return await shared()
  })
}

export default health
