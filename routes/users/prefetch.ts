import type { FastifyRequest } from 'fastify'
import type { UsersCache } from '../../plugins/cache/users.js'
import { UUID_PATTERN } from '../../schemas/common.js'
import { PAGE_SIZE } from '../../schemas/user.js'
import { decodeCursor } from './cursor.js'

const UUID = new RegExp(UUID_PATTERN)

/**
 * The cache entries that the users routes will read, named from the raw request, before validation,
 * so that admission's round trip fetches them (`config.prefetch`, plugins/admission/index.ts).
 * Input that fails validation later costs a wasted read, never a wrong answer: the cache takes a
 * prefetched entry only for the very key it loads.
 */
export function prefetchers (usersCache: UsersCache) {
  return {
    byId ({ params }: FastifyRequest): string[] | undefined {
      const { id } = params as { id?: unknown }
      return typeof id === 'string' && UUID.test(id) ? usersCache.byId.keys(id) : undefined
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
