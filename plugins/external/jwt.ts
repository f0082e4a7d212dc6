import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'

/** How far a token's exp and nbf may be off our clock. */
export const CLOCK_TOLERANCE_MS = 5000

/**
 * Access tokens: HS256 only, with exp, iat, sub and jti required. The key is the one secret;
 * headers such as `kid` or `jku` never choose it. Errors are turned into 401 by `authenticate`.
 */
export default fp(async function jwt (fastify) {
  const { JWT_SECRET, ACCESS_TOKEN_TTL } = fastify.config
  await fastify.register(fastifyJwt, {
    secret: JWT_SECRET,
    sign: { algorithm: 'HS256', expiresIn: ACCESS_TOKEN_TTL },
    verify: {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_MS
    }
  })
}, { name: 'jwt' })
