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
    if (state === 'revoked') {
      metrics.revokedTokens.inc()
      throw unauthorized(reply, errors.tokenRevoked())
    }
    request.user = claims
  })
}, { name: 'authenticate', dependencies: ['admission', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Omit<AccessClaims, 'iat' | 'exp'>
    user: AccessClaims
  }
}
