import pg from 'pg'
import Postgrator from 'postgrator'
import { fileURLToPath } from 'node:url'

// Any fixed 64-bit number, the same in every replica: pg_advisory_lock serialises the migrators.
const LOCK_KEY = 7_171_717_001

export interface MigrationResult { from: number, to: number, applied: number }

/**
 * Brings the database to the newest migration (or to `target`). Replicas that start together on an
 * empty database queue on one advisory lock; the first migrates, the others then find nothing to do.
 */
export async function migrate (connectionString: string, target?: string): Promise<MigrationResult> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000, application_name: 'pulsewatch-migrate' })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    const postgrator = new Postgrator({
      migrationPattern: fileURLToPath(new URL('*.sql', import.meta.url)),
      driver: 'pg',
      schemaTable: 'schema_migrations',
      execQuery: async (query) => await client.query(query)
    })
    const from = await postgrator.getDatabaseVersion()
    const applied = await postgrator.migrate(target)
    return { from, to: await postgrator.getDatabaseVersion(), applied: applied.length }
  } finally {
    // Ending the session releases the lock, even when a migration failed.
    await client.end()
  }
}
