import type { Redis } from 'ioredis'

/**
 * The queue Redis's `maxmemory-policy`, from INFO (which managed Redis answers, unlike CONFIG GET).
 * Anything but `noeviction` lets Redis drop BullMQ's jobs and locks when memory runs short.
 */
export async function evictionPolicy (redis: Redis): Promise<string> {
  const info = await redis.info('memory')
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown'
}
