// `npm run user:create-admin -- --email ada@example.com [--name Ada] [--promote-existing]`, in the image
// `node dist/scripts/create-admin.js …`, with the password in ADMIN_PASSWORD. Creates an admin; no route
// grants the role. Anyone may have registered the address first, so an existing account is refused:
// --promote-existing makes it an admin with this password and ends every session it had.
// Exit codes: 0 done, 1 refused or failed (nothing changed), 2 promoted but Redis not told (see below).
import { Ajv } from 'ajv'
import formats from 'ajv-formats'
import type { FastifyBaseLogger } from 'fastify'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { loadConfig, type Config } from '../config.js'
import { hash } from '../plugins/app/passwords.js'
import { createRedisBreaker } from '../plugins/app/redis-breaker.js'
import { createRevocation } from '../plugins/admission/revocation.js'
import { createUsersRepository, type UsersRepository } from '../plugins/app/users-repository.js'
import { createRedisClient, describeRedis } from '../plugins/external/redis.js'
import { Email, Name, Password } from '../schemas/user.js'

const READY_DEADLINE_MS = 5000
// The rules of POST /auth/register, so that the admin can log in with what this accepts.
const ajv = formats.default(new Ajv())

const quiet = (): void => {}
const silent: FastifyBaseLogger = { level: 'silent', fatal: quiet, error: quiet, warn: quiet, info: quiet, debug: quiet, trace: quiet, silent: quiet, child: () => silent }

/**
 * The instances read a user's generation from Redis, where it is cached for ACCESS_TOKEN_TTL + 10 s;
 * PostgreSQL alone would leave the earlier access tokens good until then. So the new generation is
 * published as the service publishes a cut-off: one that only rises, with REDIS_WAIT_REPLICAS honoured.
 */
async function publishCutOff (config: Config, users: UsersRepository, id: string, generation: number): Promise<void> {
  const redis = createRedisClient(config)
  let lastError: Error | undefined
  redis.on('error', (err: Error) => { lastError = err })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${describeRedis(config)}: ${lastError?.message ?? 'no answer'}`)), READY_DEADLINE_MS)
      redis.once('ready', () => { clearTimeout(timer); resolve() })
    })
    const durability = { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS }
    await createRevocation(redis, createRedisBreaker(redis, silent), users, config.ACCESS_TOKEN_TTL, durability).cutOff(id, generation)
  } finally {
    redis.disconnect()
  }
}

try {
  const { values } = parseArgs({ options: { email: { type: 'string' }, name: { type: 'string' }, 'promote-existing': { type: 'boolean', default: false } } })
  const email = values.email?.trim().toLowerCase()
  const password = process.env.ADMIN_PASSWORD ?? ''
  if (!ajv.validate(Email, email)) throw new Error('--email is required (an email address)')
  if (values.name !== undefined && !ajv.validate(Name, values.name)) throw new Error('--name must be 1 to 100 characters, none a control character')
  if (!ajv.validate(Password, password)) throw new Error('ADMIN_PASSWORD must hold the password, 8 to 128 characters')
  const config = loadConfig(process.env)
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 })
  try {
    const users = createUsersRepository(pool)
    const passwordHash = await hash(password)
    const created = await users.create({ email, name: values.name ?? 'Administrator', passwordHash, role: 'admin' })
    if (created !== 'exists') {
      console.log(`admin: ${created.email} (${created.id}) created`)
    } else if (!values['promote-existing']) {
      throw new Error(`refused: an account with the email ${email} already exists; --promote-existing would make it an admin AND reset its password to ADMIN_PASSWORD, ending its sessions`)
    } else {
      const promoted = await users.promote({ email, passwordHash, ...(values.name !== undefined ? { name: values.name } : {}) })
      if (promoted === undefined) throw new Error(`the account of ${email} was deleted meanwhile: run the command again`)
      console.log(`admin: ${email} (${promoted.user.id}) promoted; its password is reset and its earlier sessions are ended`)
      await publishCutOff(config, users, promoted.user.id, promoted.generation).catch((err: unknown) => {
        console.error(`user:create-admin: Redis was not told (${(err as Error).message}): access tokens issued before may pass until ${config.ACCESS_TOKEN_TTL + 10} s from now; run the command again once Redis answers`)
        process.exitCode = 2
      })
    }
  } finally {
    await pool.end()
  }
} catch (err) {
  console.error(`user:create-admin: ${(err as Error).message}`)
  process.exitCode = 1
}
