import fp from 'fastify-plugin'
import type { Cache } from './index.js'
import type { Page, UsersRepository } from '../app/users-repository.js'

const LIST = 'users'
const one = (id: string): string => `user:${id}`

/**
 * The users repository behind the cache: one entry per user, one per list page. Any change to a
 * user invalidates its entry and every page (a page may hold it, or shift because of it).
 */
function createUsersCache (cache: Cache, repository: UsersRepository) {
  const byId = cache.define('user', { fence: (id: string) => one(id), key: (id: string) => id }, async (id: string) => await repository.findById(id) ?? null)
  const page = cache.define('users-page', {
    fence: () => LIST,
    key: ({ limit, after }: { limit: number, after?: { sortKey: string, id: string } }) => `${limit}:${after?.sortKey ?? ''}:${after?.id ?? ''}`
  }, async ({ limit, after }: { limit: number, after?: { sortKey: string, id: string } }): Promise<Page> => await repository.list(limit, after))

  return {
    byId,
    page,
    /** After a user was created, changed or deleted (and the change committed). */
    changed: async (id: string): Promise<void> => await cache.invalidate(one(id), LIST)
  }
}

export default fp(async function usersCache (fastify) {
  fastify.decorate('usersCache', createUsersCache(fastify.cache, fastify.usersRepository))
}, { name: 'users-cache', dependencies: ['cache', 'repositories'] })

export type UsersCache = ReturnType<typeof createUsersCache>

declare module 'fastify' {
  interface FastifyInstance {
    usersCache: UsersCache
  }
}
