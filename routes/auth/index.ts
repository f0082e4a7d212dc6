import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/app/errors.js'
import { Credentials, RefreshRequest, Registration, TokenPair } from '../../schemas/auth.js'
import { errorResponses } from '../../schemas/common.js'
import { UserRef } from '../../schemas/user.js'

// Every route here may be sent a body, is rate limited and needs PostgreSQL.
const commonErrors = [400, 413, 415, 429, 503] as const

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, usersCache, passwords, tokens, revocation, credentials } = fastify
  const { REGISTER_RATE_LIMIT_MAX, REGISTER_RATE_LIMIT_WINDOW_MS, REFRESH_RATE_LIMIT_MAX, REFRESH_RATE_LIMIT_WINDOW_MS } = fastify.config

  fastify.post('/register', {
    config: { rateLimit: { max: REGISTER_RATE_LIMIT_MAX, timeWindow: REGISTER_RATE_LIMIT_WINDOW_MS }, idempotent: true },
    schema: {
      tags: ['auth'],
      summary: 'Create an account',
      body: Registration,
      response: { 201: UserRef, ...errorResponses(409, ...commonErrors) }
    }
  }, async (request, reply) => {
    const { email, password, name } = request.body
    const user = await usersRepository.create({ email: email.toLowerCase(), name, passwordHash: await passwords.hash(password) })
    if (user === 'exists') throw errors.emailTaken()
    await usersCache.changed(user.id)
    return await reply.code(201).send(user)
  })

  fastify.post('/login', {
    schema: {
      tags: ['auth'],
      summary: 'Exchange credentials for tokens',
      body: Credentials,
      response: { 200: TokenPair, ...errorResponses(401, ...commonErrors) }
    }
  }, async (request, reply) => {
    const found = await credentials.check(request, request.body.email.toLowerCase(), request.body.password)
    if (found === undefined) throw errors.invalidCredentials()
    return await tokens.issue(found)
  })

  fastify.post('/refresh', {
    config: { rateLimit: { max: REFRESH_RATE_LIMIT_MAX, timeWindow: REFRESH_RATE_LIMIT_WINDOW_MS } },
    schema: {
      tags: ['auth'],
      summary: 'Spend a refresh token for a new pair',
      body: RefreshRequest,
      response: { 200: TokenPair, ...errorResponses(401, ...commonErrors) }
    }
  }, async (request) => {
    const next = await tokens.refresh(request.body.refreshToken)
    if (next !== undefined && 'reused' in next) {
      // A spent token presented again means it leaked: its session is revoked, access tokens included.
      const { userId, sessionId } = next.reused
      await revocation.revokeSession(userId, sessionId)
      request.log.warn({ userId }, 'refresh token reuse: login revoked')
    }
    if (next === undefined || 'reused' in next) throw errors.refreshTokenInvalid()
    return next
  })
}

export default auth
