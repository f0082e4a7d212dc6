import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/app/errors.js'
import { LogoutRequest } from '../../schemas/auth.js'
import { errorResponses, NoContent } from '../../schemas/common.js'

// Every route here may be sent a body, is rate limited and needs PostgreSQL (and Redis, for the revocation).
const commonErrors = [400, 413, 415, 429, 503] as const

/** Ending logins: in the bearer scope (routes/protected.ts), so the token is authenticated first. */
const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, sessionsRepository, revocation } = fastify

  fastify.post('/logout', {
    schema: {
      tags: ['auth'],
      summary: 'End this login on every instance',
      body: LogoutRequest,
      response: { 204: NoContent, ...errorResponses(...commonErrors) }
    }
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
    config: { idempotent: true },
    schema: {
      tags: ['auth'],
      summary: 'Revoke every token issued to this user so far',
      response: { 204: NoContent, ...errorResponses(...commonErrors) }
    }
  }, async (request, reply) => {
    const generation = await usersRepository.bumpGeneration(request.user.sub)
    if (generation === undefined) throw errors.tokenRevoked()
    await revocation.cutOff(request.user.sub, generation)
    return await reply.code(204).send(null)
  })
}

export default logout
