import { Type, type Static } from '@sinclair/typebox'
import { Text, Uuid } from './common.js'

export const Id = Uuid({ description: 'A user id (a UUID, lower case)' })
export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 })
export const Password = Type.String({ minLength: 8, maxLength: 128 })
export const Name = Text({ minLength: 1, maxLength: 100 })
export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])

export const User = Type.Object({
  id: Id,
  email: Email,
  name: Name,
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { $id: 'User', additionalProperties: false, description: 'A user (never its password)' })

export type User = Static<typeof User>
export type Role = Static<typeof Role>

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })

export const UserPatch = Type.Object({
  email: Type.Optional(Email),
  name: Type.Optional(Name),
  password: Type.Optional(Password)
}, { additionalProperties: false, minProperties: 1 })

export const PAGE_SIZE = 20

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'Opaque: the nextCursor of the previous page' }))
}, { additionalProperties: false })

export const UserList = Type.Object({
  items: Type.Array(User),
  nextCursor: Type.Union([Type.String(), Type.Null()])
}, { description: 'A page of users and the cursor of the next one (null after the last)' })
