import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpError } from '../../plugins/app/errors.js'
import { errorResponses, NoContent } from '../../schemas/common.js'
import { IdParams, ListQuery, PAGE_SIZE, UserList, UserPatch, UserRef, UserViewRef, visibleTo } from '../../schemas/user.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { prefetchers } from './prefetch.js'

const security = [{ bearerAuth: [] }]
// Every route here needs a token, is rate limited and needs PostgreSQL; a body may be sent to PATCH and DELETE.
const errors = [401, 429, 503] as const
const bodyErrors = [400, 413, 415] as const

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, usersCache, passwords, revocation, credentials } = fastify
  const prefetch = prefetchers(usersCache)

  const mayChange = (actor: { sub: string, role: string }, id: string): void => {
    if (actor.sub !== id && actor.role !== 'admin') throw httpError(403, 'Only the user or an admin may change this user')
  }

  // A stolen access token alone must not take the account over (ASVS V6.2.3/V7.5.1): changing one's
  // own email or password needs the current password, checked under the login limits.
  // A preHandler: body and params are validated by then.
  const reauthenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const { email, name, password, currentPassword } = request.body as Static<typeof UserPatch>
    if (email === undefined && name === undefined && password === undefined) throw httpError(400, 'body must have a field to change')
    if (request.user.sub !== (request.params as Static<typeof IdParams>).id || (email === undefined && password === undefined)) return
    if (currentPassword === undefined) throw httpError(400, 'body/currentPassword is required to change your own email or password')
    const account = await usersRepository.findCredentials({ id: request.user.sub })
    if (account === undefined) throw httpError(404, 'User not found')
    if (await credentials.check(request, account.email, currentPassword) === undefined) {
      reply.header('www-authenticate', 'Bearer realm="pulsewatch", error="insufficient_user_authentication", error_description="The current password is wrong"')
      throw httpError(401, 'The current password is wrong')
    }
  }

  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: { tags: ['users'], summary: 'The authenticated user', security, response: { 200: UserRef, ...errorResponses(404, ...errors) } }
  }, async (request) => {
    const user = await usersRepository.findById(request.user.sub)
    if (user === undefined) throw httpError(404, 'User not found')
    return user
  })

  fastify.get('/', {
    onRequest: fastify.authenticate,
    config: { prefetch: prefetch.page },
    schema: { tags: ['users'], summary: 'Users in creation order, a page at a time (cached)', security, querystring: ListQuery, response: { 200: UserList, ...errorResponses(400, ...errors) } }
  }, async (request, reply) => {
    const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
    const { value, hit } = await usersCache.page({ limit: request.query.limit ?? PAGE_SIZE, after }, request.admission?.prefetched)
    reply.header('x-cache', hit ? 'hit' : 'miss')
    return { items: value.items.map(user => visibleTo(request.user, user)), nextCursor: value.last === undefined ? null : encodeCursor(value.last) }
  })

  fastify.get('/:id', {
    onRequest: fastify.authenticate,
    config: { prefetch: prefetch.byId },
    schema: { tags: ['users'], summary: 'One user (cached); another user\'s email and role only to admins', security, params: IdParams, response: { 200: UserViewRef, ...errorResponses(400, 404, ...errors) } }
  }, async (request, reply) => {
    const { value, hit } = await usersCache.byId(request.params.id, request.admission?.prefetched)
    reply.header('x-cache', hit ? 'hit' : 'miss')
    if (value === null) throw httpError(404, 'User not found')
    return visibleTo(request.user, value)
  })

  fastify.patch('/:id', {
    onRequest: fastify.authenticate,
    preHandler: reauthenticate,
    schema: { tags: ['users'], summary: 'Change a user (self or admin)', security, params: IdParams, body: UserPatch, response: { 200: UserRef, ...errorResponses(403, 404, 409, ...bodyErrors, ...errors) } }
  }, async (request) => {
    const { id } = request.params
    mayChange(request.user, id)
    const { email, name, password } = request.body
    const passwordHash = password === undefined ? undefined : await passwords.hash(password)
    const result = await usersRepository.update(id, { email: email?.toLowerCase(), name, passwordHash })
    if (result === undefined) throw httpError(404, 'User not found')
    if (result === 'exists') throw httpError(409, 'A user with this email already exists')
    await usersCache.changed(id)
    // A new password ends every session: tokens issued before it are refused everywhere.
    if (result.passwordChanged) await revocation.cutOff(id, result.generation)
    return result.user
  })

  fastify.delete('/:id', {
    onRequest: fastify.authenticate,
    schema: { tags: ['users'], summary: 'Delete a user and revoke its tokens (self or admin)', security, params: IdParams, response: { 204: NoContent, ...errorResponses(403, 404, ...bodyErrors, ...errors) } }
  }, async (request, reply) => {
    const { id } = request.params
    mayChange(request.user, id)
    if (!await usersRepository.remove(id)) throw httpError(404, 'User not found')
    await usersCache.changed(id)
    await revocation.cutOff(id, 'deleted')
    return await reply.code(204).send(null)
  })
}

export default users
