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
 * `authenticate`, the onRequest hook of every protected route: the token must verify (HS256, our
 * key, not expired, not before its nbf, every claim present and well typed), and neither the token,
 * its login nor its generation may be revoked. Any failure is a 401 that says nothing of the token.
 * When Redis cannot say whether it is revoked, REVOCATION_FAIL_MODE decides: 503, or let it through.
 */
export default fp(async function auth (fastify) {
  const failOpen = fastify.config.REVOCATION_FAIL_MODE === 'open'

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    if (request.headers.authorization === undefined) throw unauthorized(reply, 'Missing bearer token', '')
    try {
      // @fastify/jwt throws a variety of errors (some as 500s) for malformed tokens: all are 401 here.
      const claims: unknown = await request.jwtVerify()
      if (!Claims.Check(claims)) throw new Error('unexpected claims')
    } catch {
      throw unauthorized(reply, 'Invalid or expired token')
    }

    let state: 'ok' | 'revoked'
    try {
      state = await fastify.revocation.check(request.user)
    } catch (err) {
      request.log.warn({ err }, 'token revocation check failed')
      if (failOpen) return
      throw httpError(503, 'Token revocation cannot be checked right now, try again shortly')
    }
    if (state === 'revoked') throw unauthorized(reply, 'Token has been revoked')
  })
}, { name: 'auth', dependencies: ['jwt', 'revocation'] })

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
