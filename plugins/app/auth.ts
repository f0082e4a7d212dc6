import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { AccessClaims } from '../../schemas/auth.js'
import { CLOCK_TOLERANCE_MS } from '../external/jwt.js'
import { httpError } from './errors.js'

const Claims = TypeCompiler.Compile(AccessClaims)

const SCHEME = 'bearer '

// Tokens whose signature and claims were checked, until they expire: a client sends the same token
// for minutes, and the HMAC and two JSON parses were a sixth of the hot path's CPU. About 1 KB each.
const VERIFIED_MAX = 2000

const SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Whether a token is spelled as it was issued. fast-jwt decodes base64url leniently: the low bits
 * that a signature's last character leaves unused are ignored, so four spellings of one token verify.
 * The header and payload are signed as text, so only the signature can be spelled another way.
 */
function isCanonical (token: string): boolean {
  if (!SHAPE.test(token)) return false
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

function unauthorized (reply: FastifyReply, message: string, detail = ', error="invalid_token"'): Error {
  reply.header('www-authenticate', `Bearer realm="pulsewatch"${detail}`)
  return httpError(401, message)
}

/**
 * `accessClaims(request)`: the claims of the request's bearer token when it verifies (HS256, our key,
 * not expired, not before its nbf, every claim present and well typed), else undefined. The rate
 * limiter keys on it before `authenticate` runs; a token verified once is remembered until it expires.
 *
 * `authenticate`, the onRequest hook of every protected route: the token must verify, and neither
 * the token, its login nor its generation may be revoked. Any failure is a 401 that says nothing of
 * the token. When Redis cannot say whether it is revoked, REVOCATION_FAIL_MODE decides: 503, or let it through.
 */
export default fp(async function auth (fastify) {
  const failOpen = fastify.config.REVOCATION_FAIL_MODE === 'open'
  const verified = new Map<string, AccessClaims>()

  function verify (token: string): AccessClaims | undefined {
    if (!isCanonical(token)) return undefined
    try {
      // @fastify/jwt throws a variety of errors for malformed tokens: all mean "no".
      const claims: unknown = fastify.jwt.verify(token)
      return Claims.Check(claims) ? claims : undefined
    } catch {
      return undefined
    }
  }

  fastify.decorate('accessClaims', function accessClaims (request: FastifyRequest): AccessClaims | undefined {
    const header = request.headers.authorization
    if (header === undefined || header.length <= SCHEME.length) return undefined
    // The scheme is case-insensitive; clients nearly always send it as `Bearer`.
    if (!header.startsWith('Bearer ') && header.slice(0, SCHEME.length).toLowerCase() !== SCHEME) return undefined
    const token = header.slice(SCHEME.length)
    const known = verified.get(token)
    if (known !== undefined) {
      if (known.exp * 1000 + CLOCK_TOLERANCE_MS > Date.now()) return known
      verified.delete(token)
    }
    const claims = verify(token)
    if (claims !== undefined) {
      // The oldest entry makes room: a Map iterates in insertion order.
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string)
      verified.set(token, claims)
    }
    return claims
  })

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    if (request.headers.authorization === undefined) throw unauthorized(reply, 'Missing bearer token', '')
    const claims = fastify.accessClaims(request)
    if (claims === undefined) throw unauthorized(reply, 'Invalid or expired token')

    let state: 'ok' | 'revoked'
    try {
      // The rate limit read the token's deny-list entries in its round trip; else ask Redis now.
      const read = request.admission?.revocation
      state = read !== undefined ? await fastify.revocation.judge(claims, read) : await fastify.revocation.check(claims)
    } catch (err) {
      // A Redis outage is logged once, by the breaker, when it opens; per request it is only debug
      // (a warn each time measured a third of the request's CPU in an outage). Other failures warn.
      if (fastify.redisBreaker.open) request.log.debug({ err }, 'token revocation check skipped: Redis unavailable')
      else request.log.warn({ err }, 'token revocation check failed')
      if (failOpen) {
        request.user = claims
        return
      }
      throw httpError(503, 'Token revocation cannot be checked right now, try again shortly')
    }
    if (state === 'revoked') {
      fastify.metrics.revokedTokens.inc()
      throw unauthorized(reply, 'Token has been revoked')
    }
    request.user = claims
  })
}, { name: 'auth', dependencies: ['jwt', 'revocation', 'metrics', 'redis-breaker'] })

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    accessClaims: (request: FastifyRequest) => AccessClaims | undefined
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Omit<AccessClaims, 'iat' | 'exp'>
    user: AccessClaims
  }
}
