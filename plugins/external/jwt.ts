import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'

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
      clockTolerance: 5000
    }
  })
}, { name: 'jwt' })
