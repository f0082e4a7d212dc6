import fp from 'fastify-plugin'
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { availableParallelism } from 'node:os'
import pLimit from 'p-limit'

// scrypt with N = 2^15, r = 8, p = 1: about 110 ms on one core here and 32 MiB of memory while it
// runs. The parameters are stored beside each hash (`scrypt$N$r$p$salt$hash`), so they can be raised
// later and old hashes still verify.
const CURRENT = { N: 2 ** 15, r: 8, p: 1 }
const KEY_LENGTH = 32

// Hashes at once in the whole process (its cores are shared by every app in it): one per core but
// one, which is left to the event loop, so that a burst of logins does not slow every other request.
// More would not finish sooner, scrypt being CPU-bound, and each holds its 32 MiB meanwhile (libuv
// ran four at once: measured 314 MB of RSS under logins on two cores, 238 with two at a time).
export const hashing = pLimit(Math.max(1, availableParallelism() - 1))

async function derive (password: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return await hashing(async () => await new Promise<Buffer>((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { ...params, maxmem: 256 * 1024 * 1024 }, (err, key) => err === null ? resolve(key) : reject(err))
  }))
}

export async function hash (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, CURRENT)
  return ['scrypt', CURRENT.N, CURRENT.r, CURRENT.p, salt.toString('base64'), key.toString('base64')].join('$')
}

async function verify (password: string, stored: string): Promise<boolean> {
  const [scheme, N, r, p, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false
  const expected = Buffer.from(key, 'base64')
  const actual = await derive(password, Buffer.from(salt, 'base64'), { N: Number(N), r: Number(r), p: Number(p) })
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

export interface Passwords {
  hash (password: string): Promise<string>
  /** Constant-time check; `stored` undefined (unknown user) costs the same as a wrong password. */
  verify (password: string, stored: string | undefined): Promise<boolean>
}

export default fp(async function passwords (fastify) {
  const decoy = await hash(randomBytes(16).toString('hex'))
  fastify.decorate('passwords', {
    hash,
    verify: async (password, stored) => {
      const ok = await verify(password, stored ?? decoy)
      return ok && stored !== undefined
    }
  } satisfies Passwords)
}, { name: 'passwords' })

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}
