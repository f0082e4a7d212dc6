import { hash as argon2Hash } from '@node-rs/argon2'
import type { FastifyInstance } from 'fastify'
import { randomBytes, scryptSync } from 'node:crypto'
import t from 'tap'
import { hashing } from '../../../plugins/app/passwords.js'
import { build, testEnv } from '../../helper.js'
import { register, type TestUser } from '../../users.js'

// The same characters twice: once with a ligature and full-width letters, once in their NFKC form.
const TYPED = 'ﬁne ｐａｓｓｗｏｒｄ'
const NFKC = 'fine password'

/** A hash as the scrypt-only service wrote it (N=2^15, r=8, p=1, 16-byte salt, 32-byte key, NFKC). */
function legacyScrypt (password: string): string {
  const salt = randomBytes(16)
  const key = scryptSync(password.normalize('NFKC'), salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 })
  return ['scrypt', 2 ** 15, 8, 1, salt.toString('base64'), key.toString('base64')].join('$')
}

async function storedHash (app: FastifyInstance, user: TestUser): Promise<string> {
  const { rows } = await app.pg.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [user.id])
  return rows[0]?.password_hash ?? ''
}

const loginStatus = async (app: FastifyInstance, email: string, password: string): Promise<number> =>
  (await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })).statusCode

/** Holds every hashing slot of the process until the returned function is called. */
function holdSlots (): () => Promise<void> {
  let open = (): void => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  const held = Array.from({ length: hashing.concurrency }, async () => await hashing.run(async () => await gate))
  return async () => {
    open()
    await Promise.all(held)
  }
}

t.test('a registered user\'s password is stored as Argon2id with m=19456, t=2, p=1, which needs no rehash', async t => {
  const app = await build(t)
  const user = await register(app, { password: TYPED })
  const stored = await storedHash(app, user)
  t.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
  t.equal(app.passwords.needsRehash(stored), false)
  t.equal(await loginStatus(app, user.email, NFKC), 200, 'the NFKC form of the password logs in')
  t.equal(await loginStatus(app, user.email, 'fine passwore'), 401)
})

t.test('an scrypt hash from before Argon2id still logs in, with the same normalisation, and is rehashed at that login', async t => {
  const app = await build(t)
  const user = await register(app)
  const legacy = legacyScrypt(TYPED)
  await app.pg.query('UPDATE users SET password_hash = $2 WHERE id = $1', [user.id, legacy])
  const stored = async (): Promise<string> => (await app.pg.query('SELECT password_hash FROM users WHERE id = $1', [user.id])).rows[0].password_hash
  t.equal(await loginStatus(app, user.email, 'fine passwore'), 401)
  t.equal(await stored(), legacy, 'a failed login changes nothing')
  t.equal(await loginStatus(app, user.email, TYPED), 200)
  t.match(await stored(), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'the successful login stored an Argon2id hash')
  const generation = (await app.pg.query('SELECT token_generation FROM users WHERE id = $1', [user.id])).rows[0].token_generation
  t.equal(generation, 0, 'a rehash ends no session')
  await app.pg.query('UPDATE users SET password_hash = $2 WHERE id = $1', [user.id, legacy])
  t.equal(await loginStatus(app, user.email, NFKC), 200)
  t.equal(await loginStatus(app, user.email, 'fine passwore'), 401)
  t.equal(await app.passwords.verify(NFKC, legacy), true)
  t.equal(app.passwords.needsRehash(legacy), true)
  const upgraded = await app.passwords.hash(NFKC)
  t.equal(app.passwords.needsRehash(upgraded), false)
  t.equal(await app.passwords.verify(TYPED, upgraded), true, 'the new hash takes the same password')
})

t.test('an Argon2id hash verifies with the parameters stored in it, and needs a rehash only when one is below today\'s', async t => {
  const app = await build(t)
  const argon2id = async (memoryCost: number, timeCost: number): Promise<string> =>
    await argon2Hash(NFKC, { algorithm: 2, memoryCost, timeCost, parallelism: 1 })
  const weaker = await argon2id(8192, 1)
  const stronger = await argon2id(19_456, 3)
  t.equal(await app.passwords.verify(TYPED, weaker), true)
  t.equal(await app.passwords.verify(TYPED, stronger), true)
  t.equal(app.passwords.needsRehash(weaker), true)
  t.equal(app.passwords.needsRehash((await argon2id(19_456, 1))), true, 'less time, same memory')
  t.equal(app.passwords.needsRehash(stronger), false)
  t.equal(await app.passwords.verify(TYPED, 'not a hash'), false)
})

t.test('a login for an unknown email still waits for its turn to hash, behind the others', async t => {
  const app = await build(t)
  const release = holdSlots()
  t.teardown(release)
  const queued = new Promise<void>(resolve => {
    const run = hashing.run
    t.capture(hashing, 'run', async work => {
      resolve()
      return await run(work)
    })
  })
  let answered = false
  const unknown = app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'any password' } })
    .then(res => { answered = true; return res })
  await queued
  t.equal(hashing.pendingCount, 1, 'the decoy hash waits in the queue')
  t.equal(answered, false)
  await release()
  t.equal((await unknown).statusCode, 401)
})

t.test('a burst of logins beyond the bounded wait is answered 503 with retry-after, the rest 200, and none hangs', { timeout: 60_000 }, async t => {
  const env = await testEnv(t, { RATE_LIMIT_MAX: '1000000', LOGIN_RATE_LIMIT_MAX: '1000000', LOGIN_ACCOUNT_MAX: '1000000' })
  const app = await build(t, env)
  const user = await register(app)
  const release = holdSlots()
  t.teardown(release)
  // While the slots are held no hash ends, so neither the time a hash takes nor the room moves.
  const room = hashing.room
  t.ok(room > 0, `room for ${room} logins at ${hashing.msPerHash.toFixed(1)} ms a hash`)
  const extra = 10
  const total = room + extra

  let refused = 0
  let settle = (): void => {}
  const settled = new Promise<void>(resolve => { settle = resolve })
  // Every login has either queued or been refused once the refusals and the queue add up.
  const check = (): void => { if (refused + hashing.pendingCount === total) settle() }
  const answers = Array.from({ length: total }, async () => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
    if (res.statusCode === 503) {
      refused++
      check()
    }
    return res
  })
  await settled
  t.equal(hashing.pendingCount, room)
  await release()
  const responses = await Promise.all(answers)
  const statuses = responses.map(res => res.statusCode)
  t.equal(statuses.filter(s => s === 503).length, extra)
  t.equal(statuses.filter(s => s === 200).length, room)
  t.equal(Number(await app.redis.get(`login:{127.0.0.1:${user.email}}`) ?? 0), 0, 'a login refused for a full queue is not counted as a failed one')
  for (const res of responses.filter(res => res.statusCode === 503)) {
    t.match(res.headers['retry-after'], /^[1-9]\d*$/)
    t.match(res.json(), { statusCode: 503, error: 'Service Unavailable', message: /retry in \d+ seconds/ })
  }
  t.equal(await loginStatus(app, user.email, user.password), 200, 'a login after the burst goes through')
})
