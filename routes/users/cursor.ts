import { errors } from '../../plugins/app/errors.js'
import { UUID_PATTERN } from '../../schemas/common.js'

/** Where a page ended: the last user's creation time in microseconds since the epoch, and its id. */
interface Position { sortKey: string, id: string }

const UUID = new RegExp(UUID_PATTERN)
// Digits only, without leading zeros (one spelling per position, so one cache key), and few enough
// that PostgreSQL takes any of them as a time: no cursor reaches it as an error.
const MICROSECONDS = /^(0|-?[1-9]\d{0,15})$/

export const encodeCursor = (position: Position): string => Buffer.from(JSON.stringify([position.sortKey, position.id])).toString('base64url')

export function decodeCursor (cursor: string): Position {
  try {
    const [sortKey, id, ...rest] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]
    if (typeof sortKey === 'string' && MICROSECONDS.test(sortKey) && typeof id === 'string' && UUID.test(id) && rest.length === 0) return { sortKey, id }
  } catch {}
  throw errors.invalidCursor()
}
