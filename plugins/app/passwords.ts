import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from '@node-rs/argon2'
import fp from 'fastify-plugin'
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { availableParallelism } from 'node:os'
import pLimit from 'p-limit'
import { errors } from './errors.js'

// Argon2id at the OWASP cheat sheet's first choice, m = 19 MiB, t = 2, p = 1 (docs/benchmarks.md has
// its cost). Written as a PHC string, `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`, so the parameters
// travel with each hash: raising them later upgrades every account at its next login (`needsRehash`).
const ARGON2 = { m: 19_456, t: 2, p: 1 } as const
// The package's `Algorithm` is a const enum, which isolated modules cannot read: its Argon2id is 2.
const ARGON2ID = 2 as Algorithm
const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/
// The scheme before it, still verified and never written: `scrypt$N$r$p$salt$hash`, base64 fields.
const SCRYPT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/

// Hashes at once in the whole process (its cores are shared by every app in it): one per core but one,
// which is left to the event loop and every other request. Both schemes run on libuv's thread pool
// (4 threads), which also serves dns.lookup and fs: one thread is left to them.
const CONCURRENCY = Math.max(1, Math.min(availableParallelism() - 1, 3))
// How long a hash may wait for its turn. A login that would wait longer answers 503 with retry-after
// at once, instead of joining an unbounded queue that only grows while logins arrive faster than they
// are hashed (a burst, or a flood of guesses at unknown emails, each paying for its decoy).
const MAX_WAIT_MS = 2000

/**
 * At most `concurrency` hashes at once, and a bounded wait for the rest: the wait a new hash would
 * face is the work ahead of it, in hashes per slot, times a moving average of how long a hash takes,
 * so the bound follows a busy machine and the mix of Argon2id and slower scrypt hashes.
 */
function createHashing (concurrency: number, maxWaitMs: number) {
  const limit = pLimit(concurrency)
  let msPerHash = 100
  let timed = false
  const queued = (): number => limit.activeCount + limit.pendingCount
  const room = (): number => Math.floor(maxWaitMs / msPerHash) * concurrency + concurrency - queued()

  return {
    concurrency,
    maxWaitMs,
    get activeCount (): number { return limit.activeCount },
    get pendingCount (): number { return limit.pendingCount },
    get msPerHash (): number { return msPerHash },
    /** How many more may be queued now before one is refused. */
    get room (): number { return room() },
    /** Runs `work` in its turn, or throws a 503 with `retryAfter` when its turn would come too late. */
    async run<T> (work: () => Promise<T>): Promise<T> {
      if (room() <= 0) {
        const retryAfter = Math.ceil(Math.ceil((queued() - concurrency + 1) / concurrency) * msPerHash / 1000)
        throw errors.hashingBusy(retryAfter)
      }
      return await limit(work)
    },
    /** A hash took this long (its wait excluded). */
    record (ms: number): void {
      msPerHash = timed ? msPerHash * 0.8 + ms * 0.2 : ms
      timed = true
    }
  }
}

export const hashing = createHashing(CONCURRENCY, MAX_WAIT_MS)

async function inTurn<T> (work: () => Promise<T>): Promise<T> {
  return await hashing.run(async () => {
    const started = performance.now()
    try {
      return await work()
    } finally {
      hashing.record(performance.now() - started)
    }
  })
}

// Both schemes hash the NFKC form, so that a password typed with other code points for the same
// characters still matches; scrypt hashes were made from it too.
export async function hash (password: string): Promise<string> {
  return await inTurn(async () => await argon2Hash(password.normalize('NFKC'), { algorithm: ARGON2ID, memoryCost: ARGON2.m, timeCost: ARGON2.t, parallelism: ARGON2.p }))
}

async function verifyScrypt (password: string, [N, r, p, salt, key]: string[]): Promise<boolean> {
  const actual = await inTurn(async () => await new Promise<Buffer>((resolve, reject) => {
    scrypt(password.normalize('NFKC'), Buffer.from(salt ?? '', 'base64'), 32, { N: Number(N), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 }, (err, derived) => err === null ? resolve(derived) : reject(err))
  }))
  const expected = Buffer.from(key ?? '', 'base64')
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

async function verify (password: string, stored: string): Promise<boolean> {
  // The library compares in constant time (RustCrypto's password-hash compares outputs with `subtle`).
  if (PHC.test(stored)) return await inTurn(async () => await argon2Verify(stored, password.normalize('NFKC')))
  const scryptFields = SCRYPT.exec(stored)
  return scryptFields === null ? false : await verifyScrypt(password, scryptFields.slice(1))
}

/** Whether `stored` is scrypt, or Argon2id with any parameter below today's. */
function needsRehash (stored: string): boolean {
  const params = PHC.exec(stored)
  if (params === null) return true
  const [m, t, p] = params.slice(1).map(Number) as [number, number, number]
  return m < ARGON2.m || t < ARGON2.t || p < ARGON2.p
}

interface Passwords {
  /** An Argon2id PHC string; throws a 503 with `retryAfter` when too many hashes are waiting. */
  hash (password: string): Promise<string>
  /** Constant-time check; `stored` undefined (unknown user) costs the same as a wrong password. */
  verify (password: string, stored: string | undefined): Promise<boolean>
  /** True for a hash to replace, after a successful `verify`, with `hash(password)`. */
  needsRehash (stored: string): boolean
}

export default fp(async function passwords (fastify) {
  const decoy = await hash(randomBytes(16).toString('hex'))
  fastify.decorate('passwords', {
    hash,
    verify: async (password, stored) => {
      const ok = await verify(password, stored ?? decoy)
      return ok && stored !== undefined
    },
    needsRehash
  } satisfies Passwords)
}, { name: 'passwords' })

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}
