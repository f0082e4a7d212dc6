import fp from 'fastify-plugin'
import { migrate } from '../../migrations/index.js'

/** MIGRATE_ON_START: replicas starting together take turns under a lock; see migrations/index.ts. */
export default fp(async function migrations (fastify) {
  if (!fastify.config.MIGRATE_ON_START) return
  const { from, to, applied } = await migrate(fastify.config.DATABASE_URL)
  if (applied > 0) fastify.log.info({ from, to, applied }, 'database migrated')
}, { name: 'migrations', dependencies: ['postgres'] })
