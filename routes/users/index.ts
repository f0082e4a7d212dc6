import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../plugins/app/errors.js'
import { errorResponses, NoContent } from '../../schemas/common.js'
import { IdParams, ListQuery, PAGE_SIZE, UserList, UserPatch, UserRef, UserViewRef, visibleTo } from '../../schemas/user.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { prefetchers } from './prefetch.js'

// Every route here is rate limited and needs PostgreSQL (401 is added by the bearer scope, routes/protected.ts);
// a body may be sent to PATCH and DELETE.
const commonErrors = [429, 503] as const
const bodyErrors = [400, 413, 415] as const

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, usersCache, passwords, revocation, credentials } = fastify
  const prefetch = prefetchers(usersCache)

  const mayChange = (actor: { sub: string, role: string }, id: string): void => {
    if (actor.sub !== id && actor.role !== 'admin') throw errors.notSelfOrAdmin()
  }

  // A stolen access token alone must not take the account over (ASVS V6.2.3/V7.5.1): changing one's
  // own email or password needs the current password, checked under the login limits.
  // A preHandler: body and params are validated by then.
  const reauthenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const { email, name, password, currentPassword } = request.body as Static<typeof UserPatch>
    if (email === undefined && name === undefined && password === undefined) throw errors.nothingToChange()
    if (request.user.sub !== (request.params as Static<typeof IdParams>).id || (email === undefined && password === undefined)) return
    if (currentPassword === undefined) throw errors.currentPasswordRequired()
    const account = await usersRepository.findCredentials({ id: request.user.sub })
    if (account === undefined) throw errors.userNotFound()
    if (await credentials.check(request, account.email, currentPassword) === undefined) {
      reply.header('www-authenticate', 'Bearer realm="pulsewatch", error="insufficient_user_authentication", error_description="The current password is wrong"')
      throw errors.currentPasswordWrong()
    }
  }

  fastify.get('/me', {
    schema: {
      tags: ['users'],
      summary: 'The authenticated user',
      response: { 200: UserRef, ...errorResponses(404, ...commonErrors) }
    }
  }, async (request) => {
    const user = await usersRepository.findById(request.user.sub)
    if (user === undefined) throw errors.userNotFound()
    return user
  })

  fastify.get('/', {
    config: { prefetch: prefetch.page },
    schema: {
      tags: ['users'],
      summary: 'Users in creation order, a page at a time (cached)',
      querystring: ListQuery,
      response: { 200: UserList, ...errorResponses(400, ...commonErrors) }
    }
  }, async (request, reply) => {
    const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
    const { value, hit } = await usersCache.page({ limit: request.query.limit ?? PAGE_SIZE, after }, request.admission.prefetched)
    reply.header('x-cache', hit ? 'hit' : 'miss')
    return { items: value.items.map(user => visibleTo(request.user, user)), nextCursor: value.last === undefined ? null : encodeCursor(value.last) }
  })

  fastify.get('/:id', {
    config: { prefetch: prefetch.byId },
    schema: {
      tags: ['users'],
      summary: 'One user (cached); another user\'s email and role only to admins',
      params: IdParams,
      response: { 200: UserViewRef, ...errorResponses(400, 404, ...commonErrors) }
    }
  }, async (request, reply) => {
    const { value, hit } = await usersCache.byId(request.params.id, request.admission.prefetched)
    reply.header('x-cache', hit ? 'hit' : 'miss')
    if (value === null) throw errors.userNotFound()
    return visibleTo(request.user, value)
  })

  fastify.patch('/:id', {
    config: { idempotent: true },
    preHandler: reauthenticate,
    schema: {
      tags: ['users'],
      summary: 'Change a user (self or admin)',
      params: IdParams,
      body: UserPatch,
      response: { 200: UserRef, ...errorResponses(403, 404, 409, ...bodyErrors, ...commonErrors) }
    }
  }, async (request) => {
    const { id } = request.params
    mayChange(request.user, id)
    const { email, name, password } = request.body
    const passwordHash = password === undefined ? undefined : await passwords.hash(password)
    const result = await usersRepository.update(id, { email: email?.toLowerCase(), name, passwordHash })
    if (result === undefined) throw errors.userNotFound()
    if (result === 'exists') throw errors.emailTaken()
    await usersCache.changed(id)
    // A new password ends every session: tokens issued before it are refused everywhere.
    if (result.passwordChanged) await revocation.cutOff(id, result.generation)
    return result.user
  })

  fastify.delete('/:id', {
    config: { idempotent: true },
    schema: {
      tags: ['users'],
      summary: 'Delete a user and revoke its tokens (self or admin)',
      params: IdParams,
      response: { 204: NoContent, ...errorResponses(403, 404, ...bodyErrors, ...commonErrors) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    mayChange(request.user, id)
    if (!await usersRepository.remove(id)) throw errors.userNotFound()
    await usersCache.changed(id)
    await revocation.cutOff(id, 'deleted')
    return await reply.code(204).send(null)
  })
}

export default users
