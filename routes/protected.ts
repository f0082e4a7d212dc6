import type { FastifyPluginAsync } from 'fastify'
import { errorResponses } from '../schemas/common.js'
import logoutRoutes from './auth/logout.js'
import usersRoutes from './users/index.js'

const BEARER = [{ bearerAuth: [] }]

/**
 * The routes that need a bearer token, in one encapsulated scope: its onRequest hook authenticates
 * every request, and its onRoute hook marks each route for admission (a verified token names the
 * client) and for OpenAPI (security, and the 401 answer), so no route repeats it.
 */
const protectedRoutes: FastifyPluginAsync = async (scope) => {
  scope.addHook('onRoute', route => {
    route.config = { ...route.config, authenticated: true }
    route.schema = { ...route.schema, security: BEARER, response: { ...errorResponses(401), ...route.schema?.response as object } }
  })
  scope.addHook('onRequest', scope.authenticate)

  await scope.register(logoutRoutes, { prefix: '/auth' })
  await scope.register(usersRoutes, { prefix: '/users' })
}

export default protectedRoutes
