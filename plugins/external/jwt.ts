import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'

/** How far a token's exp and nbf may be off our clock. */
export const CLOCK_TOLERANCE_MS = 5000

/**
 * Access tokens: HS256 only, with exp, iat, sub, jti, and our iss and aud required (a token another
 * service signed with a shared key is not ours). The key is the one secret;
 * headers such as `kid` or `jku` never choose it. Errors are turned into 401 by `authenticate`.
 */
export default fp(async function jwt (fastify) {
  const { JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE, ACCESS_TOKEN_TTL } = fastify.config
  await fastify.register(fastifyJwt, {
    secret: JWT_SECRET,
    sign: { algorithm: 'HS256', expiresIn: ACCESS_TOKEN_TTL, iss: JWT_ISSUER, aud: JWT_AUDIENCE },
    verify: {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'iss', 'aud'],
      allowedIss: JWT_ISSUER,
      allowedAud: JWT_AUDIENCE,
      clockTolerance: CLOCK_TOLERANCE_MS
    }
  })
}, { name: 'jwt' })
