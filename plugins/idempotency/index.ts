import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest, FastifySchema, FastifySchemaValidationError, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { errorResponses } from '../../schemas/common.js'
import { normalizeIP } from '../admission/rate-limit.js'
import { errors } from '../app/errors.js'
import { createEntries, type Started, type StoredAnswer } from './entries.js'
import { IDEMPOTENCY_KEY_PATTERN, parseIdempotencyKey } from './idempotency-key.js'

// What a replay sends again; every other header is the replay's own (rate limits, request id, security).
const STORED_HEADERS = ['content-type', 'content-location', 'location', 'etag', 'last-modified']
// Answers that say nothing final about the request: a corrected or later retry with the same key must run.
// A 400 refused the request as sent, a 401 never let it act, 408 and 429 are transient, a 5xx failed.
const NOT_STORED = new Set([400, 401, 408, 429])
const CREDENTIAL_FIELD = /password|token|secret/i
// A request still running after this long is stuck: its mark is no longer renewed, and expires.
const LONGEST_HOLD_MS = 5 * 60_000

interface InFlight { started: Started, renewal: NodeJS.Timeout }

const IdempotencyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    pattern: IDEMPOTENCY_KEY_PATTERN,
    maxLength: 512,
    description: 'Makes a retry safe (draft-ietf-httpapi-idempotency-key-header): a string of 1-255 characters, quoted as a structured-field string or bare, ' +
      'unique per request. A repeat with the same request replays the stored answer with `Idempotent-Replayed: true`; while the first runs, 409; ' +
      'with another request, 422; while Redis is away, 503.'
  }))
})

/**
 * Idempotency-Key on the routes whose config says `idempotent: true`, stored in Redis: the first
 * request with a key runs, a repeat gets its answer. Routes without the option get no hook at all.
 */
export default fp(async function idempotency (fastify) {
  const { redis, redisBreaker, metrics, revokedToken } = fastify
  const { IDEMPOTENCY_TTL, IDEMPOTENCY_LEASE_MS, JWT_SECRET, REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS } = fastify.config
  const entries = createEntries(redis, {
    secret: JWT_SECRET,
    ttlMs: IDEMPOTENCY_TTL * 1000,
    leaseMs: IDEMPOTENCY_LEASE_MS,
    durability: { replicas: REDIS_WAIT_REPLICAS, timeoutMs: REDIS_WAIT_TIMEOUT_MS }
  })

  // The requests that hold their key, here rather than a request decorator: other routes' requests stay as they were.
  const holding = new WeakMap<FastifyRequest, InFlight>()

  fastify.addHook('onRoute', route => {
    if (route.config?.idempotent !== true) return
    if (holdsCredentials(route.schema?.response, id => fastify.getSchema(id))) {
      throw new Error(`${String(route.method)} ${route.url} answers with credentials: its answers must not be stored, so it cannot take Idempotency-Key`)
    }
    route.schema = documented(route.schema)
    route.schemaErrorFormatter = keyErrorFirst(route.schemaErrorFormatter)
    // A revoked token is answered before validation, so that whatever it sends it gets 401 (API.md),
    // never a 400 that tells it about its body.
    route.preValidation = [answerRevokedToken, ...[route.preValidation ?? []].flat()]
    // First among the route's preHandlers: after authentication and validation, before any work.
    route.preHandler = [takeIdempotencyKey, ...[route.preHandler ?? []].flat()]
    route.onSend = [...[route.onSend ?? []].flat(), storeIdempotentAnswer]
    route.onResponse = [...[route.onResponse ?? []].flat(), letGo]
  })

  /** The request's entry key and fingerprint, or undefined for a malformed key. */
  function identify (request: FastifyRequest, header: string): { entryKey: string, fingerprint: string } | undefined {
    const key = parseIdempotencyKey(header)
    if (key === undefined) return undefined
    const route = request.routeOptions.url ?? request.url
    const claims = request.admission.claims
    const client = claims === undefined ? `ip:{${normalizeIP(request.ip)}}` : `user:{${claims.sub}}`
    return {
      entryKey: entries.keyOf(client, request.method, route, key),
      fingerprint: entries.fingerprint({ method: request.method, route, params: request.params, body: request.body })
    }
  }

  async function takeIdempotencyKey (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers['idempotency-key']
    if (header === undefined) return
    // Never run a request whose token is revoked (answerRevokedToken has answered it already).
    if (revokedToken.awaitsReplay(request)) throw revokedToken.refuse(reply)
    // The route schema has refused a malformed key already; this only unquotes it.
    const identity = typeof header === 'string' ? identify(request, header) : undefined
    if (identity === undefined) throw errors.idempotencyKeyInvalid()
    const { entryKey, fingerprint } = identity
    const claims = request.admission.claims

    const begun = redisBreaker.open
      ? undefined
      : await entries.begin(entryKey, fingerprint, claims?.sid).catch((err: unknown) => { redisBreaker.trip(err) })
    if (begun === undefined || begun.state === 'unreplicated') {
      // Without its store the service cannot promise "at most once": the client retries later.
      metrics.idempotency.inc({ outcome: 'unavailable' })
      throw errors.idempotencyUnavailable(2)
    }
    switch (begun.state) {
      case 'started':
        holding.set(request, { started: begun, renewal: keepMark(request, begun) })
        return
      case 'mismatch':
        metrics.idempotency.inc({ outcome: 'mismatch' })
        throw errors.idempotencyKeyReused()
      case 'in-flight':
        metrics.idempotency.inc({ outcome: 'conflict' })
        throw errors.idempotencyInFlight(1)
      case 'done':
        return await replay(reply, begun.answer)
    }
  }

  async function replay (reply: FastifyReply, { status, headers, body }: StoredAnswer): Promise<void> {
    metrics.idempotency.inc({ outcome: 'replayed' })
    return await reply.code(status).headers(headers).header('idempotent-replayed', 'true').send(body ?? undefined)
  }

  /**
   * A retry whose token its first send revoked: the stored answer of that same request, sent by the
   * same login, else the 401. It never takes the key, and never runs. Before validation, the
   * fingerprint is of the body as parsed: the same as validated on these routes, whose body schemas
   * set no defaults (were it not, the retry would get the 401, never another request's answer).
   */
  async function answerRevokedToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!revokedToken.awaitsReplay(request)) return
    const header = request.headers['idempotency-key']
    const identity = typeof header === 'string' ? identify(request, header) : undefined
    const found = identity === undefined || redisBreaker.open
      ? undefined
      : await entries.peek(identity.entryKey, identity.fingerprint).catch((err: unknown) => { redisBreaker.trip(err) })
    if (found?.state !== 'done' || found.login === undefined || found.login !== request.user.sid) throw revokedToken.refuse(reply)
    return await replay(reply, found.answer)
  }

  /**
   * The mark lives one lease and is renewed every third of it while the request runs, however long it
   * takes: a retry never runs beside it. A killed process stops renewing: its key is free a lease later.
   */
  function keepMark (request: FastifyRequest, started: Started): NodeJS.Timeout {
    const since = Date.now()
    const renewal = setInterval(() => {
      if (Date.now() - since > LONGEST_HOLD_MS) {
        clearInterval(renewal)
        request.log.warn('Idempotency-Key: the request is still running after 5 minutes; its key is let go')
        return
      }
      started.renew().then(
        owned => { if (!owned) request.log.warn('Idempotency-Key: Redis lost the in-flight mark (restart, failover or eviction)') },
        (err: unknown) => { redisBreaker.trip(err) })
    }, IDEMPOTENCY_LEASE_MS / 3)
    // A renewal never keeps the process alive: the request itself does, while it runs.
    return renewal.unref()
  }

  async function storeIdempotentAnswer (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const inFlight = holding.get(request)
    if (inFlight === undefined) return payload
    holding.delete(request)
    clearInterval(inFlight.renewal)
    const answer = storable(reply, payload)
    if (answer === undefined && reply.statusCode < 300) request.log.warn('Idempotency-Key: a success whose body is not text cannot be stored')
    // Stored before the client hears the answer, so that its retry finds it.
    const written = await inFlight.started.finish(answer).catch((err: unknown) => { redisBreaker.trip(err) })
    if (written === undefined || !written.owned || !written.replicated) {
      request.log.warn({ written }, 'Idempotency-Key: the answer may not be kept (Redis failed, lost the mark, or too few replicas have it): a retry may run again')
    }
    return payload
  }

  /** A request that ended without its answer passing onSend (its connection broke): its mark expires. */
  async function letGo (request: FastifyRequest): Promise<void> {
    const inFlight = holding.get(request)
    if (inFlight === undefined) return
    holding.delete(request)
    clearInterval(inFlight.renewal)
  }
}, { name: 'idempotency', dependencies: ['redis', 'redis-breaker', 'metrics', 'admission', 'authenticate', 'errors'] })

function storable (reply: FastifyReply, payload: unknown): StoredAnswer | undefined {
  const status = reply.statusCode
  if (status >= 500 || NOT_STORED.has(status)) return undefined
  if (payload !== null && payload !== undefined && typeof payload !== 'string') return undefined
  const headers: Record<string, string> = {}
  for (const name of STORED_HEADERS) {
    const value = reply.getHeader(name)
    if (value !== undefined) headers[name] = String(value)
  }
  return { status, headers, body: payload ?? null }
}

type SchemaErrorFormatter = NonNullable<RouteOptions['schemaErrorFormatter']>

/** A malformed key gets its own code and message, not the pattern; other errors read as Fastify's. */
function keyErrorFirst (formatter: SchemaErrorFormatter | undefined): SchemaErrorFormatter {
  return (failures: FastifySchemaValidationError[], dataVar: Parameters<SchemaErrorFormatter>[1]) => {
    if (dataVar === 'headers' && failures.some(failure => failure.instancePath === '/idempotency-key')) return errors.idempotencyKeyInvalid()
    return formatter?.(failures, dataVar) ?? new Error(failures.map(failure => `${dataVar}${failure.instancePath} ${failure.message ?? ''}`).join(', '))
  }
}

/** The route's schema with the header (OpenAPI documents it) and the answers it adds. */
function documented (schema: FastifySchema | undefined): FastifySchema {
  const headers = schema?.headers as { properties?: object } | undefined
  return {
    ...schema,
    headers: headers === undefined ? IdempotencyHeader : { ...headers, properties: { ...headers.properties, ...IdempotencyHeader.properties } },
    response: { ...errorResponses(400, 409, 422, 503), ...schema?.response as object }
  }
}

/** Whether a schema, through its $refs, names a field that would put a credential in a stored answer. */
function holdsCredentials (schema: unknown, resolve: (id: string) => unknown, seen = new Set<unknown>()): boolean {
  if (schema === null || typeof schema !== 'object' || seen.has(schema)) return false
  seen.add(schema)
  const { properties, $ref } = schema as { properties?: object, $ref?: unknown }
  if (properties !== undefined && Object.keys(properties).some(name => CREDENTIAL_FIELD.test(name))) return true
  if (typeof $ref === 'string' && holdsCredentials(resolve($ref), resolve, seen)) return true
  return Object.values(schema).some(value => holdsCredentials(value, resolve, seen))
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Accept `Idempotency-Key` (plugins/idempotency): never on a route whose answer holds a credential. */
    idempotent?: boolean
  }
}
