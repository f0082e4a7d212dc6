import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AccessClaims } from '../../schemas/auth.js'
import { errors } from '../app/errors.js'

// RFC 6750: a request without a token gets the bare challenge; a bad token also gets error="invalid_token".
function unauthorized (reply: FastifyReply, error: FastifyError): FastifyError {
  reply.header('www-authenticate', error.code === 'PW_TOKEN_MISSING' ? 'Bearer realm="pulsewatch"' : 'Bearer realm="pulsewatch", error="invalid_token"')
  return error
}

/**
 * `authenticate`, the onRequest hook of the bearer scope (routes/protected.ts): the token that
 * admission verified must not be revoked, nor its login, nor its generation. It judges what admission
 * read; only when admission could not read (Redis skipped) does it ask Redis itself. Any failure is a
 * 401 that says nothing of the token. When Redis cannot say, REVOCATION_FAIL_MODE decides: 503, or let it through.
 */
export default fp(async function authenticate (fastify) {
  const failOpen = fastify.config.REVOCATION_FAIL_MODE === 'open'
  const { revocation, redisBreaker, metrics } = fastify

  // A route's own `onRequest: fastify.authenticate` would refuse every token: admission reads the
  // claims only for the routes of the bearer scope. Say so when the route is added, not at runtime.
  fastify.addHook('onRoute', route => {
    if ([route.onRequest].flat().includes(fastify.authenticate)) throw new Error(`${route.url}: register it in routes/protected.ts instead of onRequest: authenticate`)
  })

  // logout-all, deleting oneself and a new password revoke the token that sent them. Its retry, with
  // an Idempotency-Key, is let through to the idempotency preHandler, which replays the first answer to
  // the same login or refuses with the 401 spared here; it never reaches a handler.
  const awaitingReplay = new WeakSet<FastifyRequest>()
  fastify.decorate('revokedToken', {
    awaitsReplay: (request: FastifyRequest): boolean => awaitingReplay.has(request),
    refuse (reply: FastifyReply): FastifyError {
      metrics.revokedTokens.inc()
      return unauthorized(reply, errors.tokenRevoked())
    }
  })

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    if (request.headers.authorization === undefined) throw unauthorized(reply, errors.tokenMissing())
    const { claims, revocation: read } = request.admission
    if (claims === undefined) throw unauthorized(reply, errors.tokenInvalid())

    let state: 'ok' | 'revoked'
    try {
      state = read !== undefined ? await revocation.judge(claims, read) : await revocation.check(claims)
    } catch (err) {
      // A Redis outage is logged once, by the breaker, when it opens; per request it is only debug.
      if (redisBreaker.open) request.log.debug({ err }, 'token revocation check skipped: Redis unavailable')
      else request.log.warn({ err }, 'token revocation check failed')
      if (!failOpen) throw errors.revocationUnavailable()
      state = 'ok'
    }
    if (state === 'revoked' && request.routeOptions.config.idempotent === true && request.headers['idempotency-key'] !== undefined) {
      awaitingReplay.add(request)
    } else if (state === 'revoked') {
      throw fastify.revokedToken.refuse(reply)
    }
    request.user = claims
  })
}, { name: 'authenticate', dependencies: ['admission', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** A revoked token let through on an idempotent route, to be answered only from its own stored answer. */
    revokedToken: {
      awaitsReplay: (request: FastifyRequest) => boolean
      /** The 401 (and its count) that authenticate did not send. */
      refuse: (reply: FastifyReply) => FastifyError
    }
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Omit<AccessClaims, 'iat' | 'exp'>
    user: AccessClaims
  }
}
