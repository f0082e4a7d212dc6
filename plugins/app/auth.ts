import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { httpError } from './errors.js'
import type { AccessClaims } from './revocation.js'

const Uuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })
const Claims = TypeCompiler.Compile(Type.Object({
  sub: Uuid,
  jti: Uuid,
  sid: Uuid,
  gen: Type.Integer({ minimum: 0 }),
  role: Type.Union([Type.Literal('user'), Type.Literal('admin')]),
  iat: Type.Integer(),
  exp: Type.Integer()
}))

function unauthorized (reply: FastifyReply, message: string, detail = ', error="invalid_token"'): Error {
  reply.header('www-authenticate', `Bearer realm="pulsewatch"${detail}`)
  return httpError(401, message)
}

/**
 * `accessClaims(request)`: the claims of the request's bearer token when it verifies (HS256, our key,
 * not expired, not before its nbf, every claim present and well typed), else undefined. Memoised per
 * request: the rate limiter keys on it before `authenticate` runs, and the token is verified once.
 *
 * `authenticate`, the onRequest hook of every protected route: the token must verify, and neither
 * the token, its login nor its generation may be revoked. Any failure is a 401 that says nothing of
 * the token. When Redis cannot say whether it is revoked, REVOCATION_FAIL_MODE decides: 503, or let it through.
 */
export default fp(async function auth (fastify) {
  const failOpen = fastify.config.REVOCATION_FAIL_MODE === 'open'
  const verified = new WeakMap<FastifyRequest, Promise<AccessClaims | undefined>>()

  async function verify (request: FastifyRequest): Promise<AccessClaims | undefined> {
    if (request.headers.authorization === undefined) return undefined
    try {
      // @fastify/jwt throws a variety of errors (some as 500s) for malformed tokens: all mean "no".
      const claims: unknown = await request.jwtVerify()
      return Claims.Check(claims) ? claims : undefined
    } catch {
      return undefined
    }
  }

  fastify.decorate('accessClaims', async function accessClaims (request: FastifyRequest) {
    let claims = verified.get(request)
    if (claims === undefined) {
      claims = verify(request)
      verified.set(request, claims)
    }
    return await claims
  })

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    if (request.headers.authorization === undefined) throw unauthorized(reply, 'Missing bearer token', '')
    const claims = await fastify.accessClaims(request)
    if (claims === undefined) throw unauthorized(reply, 'Invalid or expired token')

    let state: 'ok' | 'revoked'
    try {
      state = await fastify.revocation.check(claims)
    } catch (err) {
      // A Redis outage is logged once, by the breaker, when it opens; per request it is only debug
      // (a warn each time measured a third of the request's CPU in an outage). Other failures warn.
      if (fastify.redisBreaker.open) request.log.debug({ err }, 'token revocation check skipped: Redis unavailable')
      else request.log.warn({ err }, 'token revocation check failed')
      if (failOpen) return
      throw httpError(503, 'Token revocation cannot be checked right now, try again shortly')
    }
    if (state === 'revoked') {
      fastify.metrics.revokedTokens.inc()
      throw unauthorized(reply, 'Token has been revoked')
    }
  })
}, { name: 'auth', dependencies: ['jwt', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    accessClaims: (request: FastifyRequest) => Promise<AccessClaims | undefined>
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Omit<AccessClaims, 'iat' | 'exp'>
    user: AccessClaims
  }
}
