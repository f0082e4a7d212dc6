import { createHash, createHmac, hkdfSync, randomUUID } from 'node:crypto'
import type { ChainableCommander, Redis } from 'ioredis'
import { stringify } from 'safe-stable-stringify'

/** An answer as its client got it: the status, the headers it needs, the body byte for byte. */
export interface StoredAnswer { status: number, headers: Record<string, string>, body: string | null }

/**
 * A key's value: the fingerprint of the request that took it, then its owner while it runs, or its
 * answer, with the login (token `sid`) that sent it on an authenticated route.
 */
interface Entry { fingerprint: string, owner?: string, answer?: StoredAnswer, login?: string }

/** What a write's WAIT found: whether the key still held this request's mark, and enough replicas had it. */
export interface Written { owned: boolean, replicated: boolean }

/** The request whose key was free: it runs, renewing its mark, and `finish` stores its answer (or, undefined, frees the key). */
export interface Started {
  state: 'started'
  renew: () => Promise<boolean>
  finish: (answer: StoredAnswer | undefined) => Promise<Written>
}

export type Begun = Started | { state: 'unreplicated' } | { state: 'in-flight' } | { state: 'mismatch' } | { state: 'done', answer: StoredAnswer, login?: string }

/** What makes two requests the same one: the draft's fingerprint, over what the handler is given. */
export interface RequestParts { method: string, route: string, params: unknown, body: unknown }

// Take the key if it is free (SET NX, so two requests never both run), else say what it holds.
// A script's clock stands still, so a key that SET found cannot expire before GET reads it.
const BEGIN = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])`

// Only the request that holds the key extends or replaces its mark: one whose mark was lost (a
// failover, a restart) must not touch the entry of a request that took the key since.
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`
const FINISH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1`

declare module 'ioredis' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface RedisCommander<Context> {
    /** key, the in-flight mark, its lease in ms: null when taken, else what the key holds. */
    pwIdempotencyBegin: (key: string, mark: string, leaseMs: number) => Promise<string | null>
    /** key, the mark it must still hold, the lease in ms: 1 when extended. */
    pwIdempotencyRenew: (key: string, mark: string, leaseMs: number) => Promise<number>
    /** key, the mark it must still hold, the entry with the answer ('' to free the key), its lifetime in ms: 1 when written. */
    pwIdempotencyFinish: (key: string, mark: string, entry: string, ttlMs: number) => Promise<number>
  }
}

export interface EntryOptions {
  /** The service's signing secret: fingerprints are keyed with a key drawn from it. */
  secret: string
  /** How long an answer is kept. */
  ttlMs: number
  /** How long an in-flight mark lives unless renewed. */
  leaseMs: number
  /** REDIS_WAIT_REPLICAS and its timeout: marks and answers count as written once that many replicas have them. */
  durability: { replicas: number, timeoutMs: number }
}

/**
 * The Redis entries of Idempotency-Key, one per (client, method, route, key). A key's value is its
 * in-flight mark until the request is answered, then the answer; both carry a TTL.
 */
export function createEntries (redis: Redis, { secret, ttlMs, leaseMs, durability }: EntryOptions) {
  redis.defineCommand('pwIdempotencyBegin', { numberOfKeys: 1, lua: BEGIN })
  redis.defineCommand('pwIdempotencyRenew', { numberOfKeys: 1, lua: RENEW })
  redis.defineCommand('pwIdempotencyFinish', { numberOfKeys: 1, lua: FINISH })
  // A body may hold a password: the fingerprint is an HMAC, so that reading Redis never lets anyone
  // test guesses against it. Its key is derived, not the secret itself.
  const fingerprintKey = Buffer.from(hkdfSync('sha256', secret, '', 'pulsewatch idempotency fingerprint', 32))

  /** One script, then WAIT for the replicas when REDIS_WAIT_REPLICAS asks for them, in one round trip. */
  async function write<T> (script: (batch: ChainableCommander) => void): Promise<{ result: T, replicated: boolean }> {
    const batch = redis.pipeline()
    script(batch)
    if (durability.replicas > 0) batch.wait(durability.replicas, durability.timeoutMs)
    const results = await batch.exec()
    const failure = (results ?? [[new Error('no reply from Redis'), null]]).find(([err]) => err !== null)
    if (failure !== undefined) throw failure[0] instanceof Error ? failure[0] : new Error(String(failure[0]))
    return { result: results![0]![1] as T, replicated: durability.replicas === 0 || Number(results![1]![1]) >= durability.replicas }
  }

  function judge (held: string, fingerprint: string): Begun {
    const entry = JSON.parse(held) as Entry
    if (entry.fingerprint !== fingerprint) return { state: 'mismatch' }
    return entry.answer === undefined ? { state: 'in-flight' } : { state: 'done', answer: entry.answer, login: entry.login }
  }

  return {
    /**
     * `idem:<client>:<METHOD>:<route>:<sha256 of the key>`; the client (`user:{id}` or `ip:{address}`)
     * is the hash tag, as for its rate-limit counters. The key is hashed: any length, any character.
     */
    keyOf (client: string, method: string, route: string, idempotencyKey: string): string {
      const digest = createHash('sha256').update(idempotencyKey).digest('base64url')
      return `idem:${client}:${method}:${route.replace(/[{}]/g, '')}:${digest}`
    },

    /** The canonical JSON of the parts (keys sorted, as RFC 8785), digested. */
    fingerprint ({ method, route, params, body }: RequestParts): string {
      return createHmac('sha256', fingerprintKey).update(stringify([method, route, params ?? null, body ?? null])).digest('base64url')
    },

    /** Takes the key, or says what holds it; 'unreplicated' when the mark did not reach the replicas asked for (and is gone). */
    async begin (key: string, fingerprint: string, login?: string): Promise<Begun> {
      const mark = JSON.stringify({ fingerprint, owner: randomUUID() } satisfies Entry)
      const { result: held, replicated } = await write<string | null>(batch => batch.pwIdempotencyBegin(key, mark, leaseMs))
      if (held === null) {
        const finish = async (answer: StoredAnswer | undefined): Promise<Written> => {
          const entry = answer === undefined ? '' : JSON.stringify({ fingerprint, answer, login } satisfies Entry)
          const { result, replicated } = await write<number>(batch => batch.pwIdempotencyFinish(key, mark, entry, ttlMs))
          return { owned: result === 1, replicated }
        }
        if (!replicated) {
          // A failover could lose this mark and let a retry run beside the request: do not run it.
          await finish(undefined)
          return { state: 'unreplicated' }
        }
        return { state: 'started', renew: async () => await redis.pwIdempotencyRenew(key, mark, leaseMs) === 1, finish }
      }
      return judge(held, fingerprint)
    },

    /** What the key holds, without taking it: for a request that may only be replayed to. */
    async peek (key: string, fingerprint: string): Promise<Begun | undefined> {
      const held = await redis.get(key)
      return held === null ? undefined : judge(held, fingerprint)
    }
  }
}

export type Entries = ReturnType<typeof createEntries>
