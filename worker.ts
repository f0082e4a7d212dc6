import { Queue, UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import pg from 'pg'
import { pino } from 'pino'
import { configOrExit, refuseToStart } from './config.js'
import { evictionPolicy } from './jobs/eviction-policy.js'
import { purgeSessions } from './jobs/purge-sessions.js'

// The worker process (`node dist/worker.js`, `npm run worker`): the API's configuration, and the jobs
// of jobs/ on BullMQ, in the queue Redis (QUEUE_REDIS_URL, else REDIS_URL).

const QUEUE = 'maintenance'
const PURGE = 'purge-sessions'
const DAY_MS = 86_400_000

const fail = (message: string): never => refuseToStart('pulsewatch-worker', message)
const config = configOrExit('pulsewatch-worker')
const log = pino({ name: 'pulsewatch-worker', level: config.LOG_LEVEL })

// BullMQ's own connections wait for Redis (no per-command retry limit): a worker outlives an outage.
// It names its keys with `prefix`, which carries a hash tag so that a queue's keys share a Cluster slot.
const connection = new Redis(config.QUEUE_REDIS_URL ?? config.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: true })
connection.on('error', err => log.debug({ err }, 'queue redis connection error'))
const prefix = `${config.REDIS_KEY_PREFIX}{jobs}`

try {
  await connection.connect()
  const policy = await evictionPolicy(connection)
  if (policy !== 'noeviction') {
    const message = `the queue Redis has maxmemory-policy ${policy}: BullMQ loses jobs and locks under eviction; set it to noeviction`
    if (config.NODE_ENV === 'production') fail(message)
    log.warn(message)
  }
} catch (err) {
  fail(`the queue Redis is unreachable: ${(err as Error).message}`)
}

const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2, connectionTimeoutMillis: 5000, application_name: 'pulsewatch-worker' })
pool.on('error', err => log.warn({ err }, 'idle postgres connection lost'))

const queue = new Queue(QUEUE, { connection, prefix })
// Idempotent: every worker replica declares the same schedule at start, and one job runs per interval.
async function schedulePurge (): Promise<void> {
  await queue.upsertJobScheduler(PURGE, { every: config.PURGE_EVERY_MS }, {
    name: PURGE,
    opts: { removeOnComplete: { count: 100, age: 7 * DAY_MS / 1000 }, removeOnFail: { count: 1000, age: 30 * DAY_MS / 1000 } }
  })
  log.info({ every: config.PURGE_EVERY_MS }, 'purge scheduled')
}
await schedulePurge()
// A Redis that comes back empty (restarted without persistence, or failed over to a replica that was
// behind) has forgotten the schedule: declare it again, only then, so a blip does not rerun the purge.
connection.on('ready', () => {
  queue.getJobScheduler(PURGE)
    .then(async scheduler => { if (scheduler === undefined) await schedulePurge() })
    .catch((err: unknown) => log.warn({ err }, 'cannot check the purge schedule after reconnecting'))
})

// A job whose worker died is taken up again once its lock lapses, checked as often as the lock lasts.
const worker = new Worker(QUEUE, async job => {
  if (job.name !== PURGE) throw new UnrecoverableError(`no such job: ${job.name}`)
  return await purgeSessions(pool, { before: new Date(Date.now() - config.PURGE_RETENTION_DAYS * DAY_MS), batchSize: config.PURGE_BATCH_SIZE })
}, { connection, prefix, concurrency: 1, lockDuration: config.JOB_LOCK_MS, stalledInterval: config.JOB_LOCK_MS })
worker.on('active', job => log.info({ job: job.name, id: job.id }, 'job started'))
worker.on('completed', (job, result) => log.info({ job: job.name, id: job.id, result }, 'job completed'))
worker.on('failed', (job, err) => log.warn({ job: job?.name, id: job?.id, err }, 'job failed'))
worker.on('error', err => log.warn({ err }, 'worker error'))
log.info({ queue: QUEUE, prefix }, 'worker ready')

let stopping = false
async function stop (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log.info({ signal }, 'stopping: the job in hand finishes first')
  // close() waits for the active job without a limit of its own; past the deadline it is abandoned
  // (its lock lapses and another worker takes it up as stalled).
  const deadline = new Promise<'late'>(resolve => setTimeout(resolve, config.WORKER_SHUTDOWN_TIMEOUT_MS, 'late').unref())
  if (await Promise.race([worker.close().then(() => 'closed' as const), deadline]) === 'late') {
    log.warn('the job in hand did not finish in time: left to another worker')
    await worker.close(true)
  }
  await queue.close()
  await pool.end()
  connection.disconnect()
  process.exit(0)
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => { stop(signal).catch((err: unknown) => fail(`cannot stop cleanly: ${(err as Error).message}`)) })
}
