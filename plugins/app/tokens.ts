import type { JWT } from '@fastify/jwt'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { Role } from '../../schemas/user.js'
import type { RefreshTokensRepository } from './refresh-tokens-repository.js'

export interface TokenPair { accessToken: string, refreshToken: string, tokenType: 'Bearer', expiresIn: number }

/** Issues an access token and a refresh token for one login (a refresh-token family). */
export function createTokens (jwt: JWT, refreshTokens: RefreshTokensRepository, ttl: { access: number, refresh: number }) {
  return {
    async issue (user: { id: string, role: Role, generation: number }, familyId: string = randomUUID()): Promise<TokenPair> {
      const accessToken = jwt.sign({ sub: user.id, jti: randomUUID(), sid: familyId, gen: user.generation, role: user.role })
      const refreshToken = await refreshTokens.create(user.id, familyId, user.generation, ttl.refresh)
      return { accessToken, refreshToken, tokenType: 'Bearer', expiresIn: ttl.access }
    }
  }
}

export default fp(async function tokens (fastify) {
  const { ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL } = fastify.config
  fastify.decorate('tokens', createTokens(fastify.jwt, fastify.refreshTokensRepository, { access: ACCESS_TOKEN_TTL, refresh: REFRESH_TOKEN_TTL }))
}, { name: 'tokens', dependencies: ['jwt', 'refresh-tokens-repository'] })

declare module 'fastify' {
  interface FastifyInstance {
    tokens: ReturnType<typeof createTokens>
  }
}
