import type { FastifyRequest } from 'fastify'
import type { UsersCache } from '../../plugins/app/users-cache.js'
import { PAGE_SIZE } from '../../schemas/user.js'
import { decodeCursor } from './cursor.js'

const UUID_LENGTH = 36

/**
 * The cache entries that the users routes will read, named from the raw request, before validation,
 * so that the rate limit's round trip fetches them (`config.prefetch`, plugins/app/rate-limit.ts).
 * Input that fails validation later costs a wasted read, never a wrong answer: the cache takes a
 * prefetched entry only for the very key it loads.
 */
export function prefetchers (usersCache: UsersCache) {
  return {
    byId ({ params }: FastifyRequest): string[] | undefined {
      const { id } = params as { id?: unknown }
      return typeof id === 'string' && id.length === UUID_LENGTH ? usersCache.byId.keys(id) : undefined
    },

    page ({ query }: FastifyRequest): string[] | undefined {
      const { limit = PAGE_SIZE, cursor } = query as { limit?: unknown, cursor?: unknown }
      if (!Number.isInteger(Number(limit)) || (cursor !== undefined && typeof cursor !== 'string')) return undefined
      try {
        return usersCache.page.keys({ limit: Number(limit), after: cursor === undefined ? undefined : decodeCursor(cursor) })
      } catch {
        return undefined
      }
    }
  }
}
