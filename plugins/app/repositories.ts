import fp from 'fastify-plugin'
import { createSessionsRepository, type SessionsRepository } from './sessions-repository.js'
import { createUsersRepository, type UsersRepository } from './users-repository.js'

/** The SQL of the service, one repository per table family: users, and logins with their refresh tokens. */
export default fp(async function repositories (fastify) {
  fastify.decorate('usersRepository', createUsersRepository(fastify.pg))
  fastify.decorate('sessionsRepository', createSessionsRepository(fastify.pg))
}, { name: 'repositories', dependencies: ['postgres'] })

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
    sessionsRepository: SessionsRepository
  }
}
