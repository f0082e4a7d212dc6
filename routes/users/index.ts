import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { httpError } from '../../plugins/app/errors.js'
import { ErrorSchema } from '../../schemas/common.js'
import { User } from '../../schemas/user.js'

const bearer = [{ bearerAuth: [] }]

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: { tags: ['users'], summary: 'The authenticated user', security: bearer, response: { 200: User, 401: ErrorSchema, 404: ErrorSchema } }
  }, async (request) => {
    const user = await fastify.usersRepository.findById(request.user.sub)
    if (user === undefined) throw httpError(404, 'User not found')
    return user
  })
}

export default users
