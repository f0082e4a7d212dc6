import { httpError } from '../../plugins/app/errors.js'

export interface Position { sortKey: string, id: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The position after a page, as an opaque string (PostgreSQL's own text of created_at keeps microseconds). */
export const encodeCursor = (position: Position): string => Buffer.from(JSON.stringify([position.sortKey, position.id])).toString('base64url')

export function decodeCursor (cursor: string): Position {
  try {
    const [sortKey, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]
    if (typeof sortKey === 'string' && typeof id === 'string' && UUID.test(id) && !Number.isNaN(Date.parse(sortKey))) return { sortKey, id }
  } catch {}
  throw httpError(400, 'querystring/cursor is not a cursor this service issued')
}
