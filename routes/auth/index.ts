import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { httpError } from '../../plugins/app/errors.js'
import { Credentials, LogoutRequest, RefreshRequest, Registration, TokenPair } from '../../schemas/auth.js'
import { errorResponses, NoContent } from '../../schemas/common.js'
import { UserRef } from '../../schemas/user.js'

const bearer = [{ bearerAuth: [] }]
// Every route here may be sent a body, is rate limited and needs PostgreSQL.
const errors = [400, 413, 415, 429, 503] as const

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, usersCache, sessionsRepository, passwords, tokens, revocation, credentials } = fastify

  fastify.post('/register', {
    schema: { tags: ['auth'], summary: 'Create an account', body: Registration, response: { 201: UserRef, ...errorResponses(409, ...errors) } }
  }, async (request, reply) => {
    const { email, password, name } = request.body
    const user = await usersRepository.create({ email: email.toLowerCase(), name, passwordHash: await passwords.hash(password) })
    if (user === 'exists') throw httpError(409, 'A user with this email already exists')
    await usersCache.changed(user.id)
    return await reply.code(201).send(user)
  })

  fastify.post('/login', {
    schema: { tags: ['auth'], summary: 'Exchange credentials for tokens', body: Credentials, response: { 200: TokenPair, ...errorResponses(401, ...errors) } }
  }, async (request, reply) => {
    const found = await credentials.check(request, request.body.email.toLowerCase(), request.body.password)
    if (found === undefined) throw httpError(401, 'Invalid email or password')
    return await tokens.issue(found)
  })

  fastify.post('/refresh', {
    schema: { tags: ['auth'], summary: 'Spend a refresh token for a new pair', body: RefreshRequest, response: { 200: TokenPair, ...errorResponses(401, ...errors) } }
  }, async (request) => {
    const next = await tokens.refresh(request.body.refreshToken)
    if (next !== undefined && 'reused' in next) {
      // A spent token presented again means it leaked: its session is revoked, access tokens included.
      const { userId, sessionId } = next.reused
      await revocation.revokeSession(userId, sessionId)
      request.log.warn({ userId }, 'refresh token reuse: login revoked')
    }
    if (next === undefined || 'reused' in next) throw httpError(401, 'Invalid or expired refresh token')
    return next
  })

  fastify.post('/logout', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'End this login on every instance', security: bearer, body: LogoutRequest, response: { 204: NoContent, ...errorResponses(401, ...errors) } }
  }, async (request, reply) => {
    const { sub, sid } = request.user
    // PostgreSQL first: a refresh that raced this logout has committed by now, so its access token
    // is older than the deny-list entry written next and expires before it.
    await sessionsRepository.revoke(sub, sid)
    await revocation.revokeLogin(request.user)
    const other = request.body?.refreshToken
    const session = other === undefined ? undefined : await sessionsRepository.revokeByToken(sub, other)
    if (session !== undefined && session !== sid) await revocation.revokeSession(sub, session)
    return await reply.code(204).send(null)
  })

  fastify.post('/logout-all', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'Revoke every token issued to this user so far', security: bearer, response: { 204: NoContent, ...errorResponses(401, ...errors) } }
  }, async (request, reply) => {
    const generation = await usersRepository.bumpGeneration(request.user.sub)
    if (generation === undefined) throw httpError(401, 'Token has been revoked')
    await revocation.cutOff(request.user.sub, generation)
    return await reply.code(204).send(null)
  })
}

export default auth
