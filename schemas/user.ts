import { Type, type Static } from '@sinclair/typebox'
import { Text, Uuid } from './common.js'

const Id = Uuid({ description: 'A user id (a UUID, lower case)' })
export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 })
export const Password = Type.String({ minLength: 8, maxLength: 128 })
export const Name = Text({ minLength: 1, maxLength: 100 })
export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])
export type Role = Static<typeof Role>

export const User = Type.Object({
  id: Id,
  email: Email,
  name: Name,
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { $id: 'User', additionalProperties: false, description: 'A user (never its password)' })

export type User = Static<typeof User>

/** What another user may see: everything but the email, the role and updatedAt. */
export const UserView = Type.Object({
  id: Id,
  name: Name,
  createdAt: Type.String({ format: 'date-time' }),
  email: Type.Optional(Email),
  role: Type.Optional(Role),
  updatedAt: Type.Optional(Type.String({ format: 'date-time' }))
}, { $id: 'UserView', additionalProperties: false, description: 'A user as the caller may see it: email, role and updatedAt only to the user themself and to admins' })

export type UserView = Static<typeof UserView>

/** The user as `viewer` may see it (ASVS V8: another user's email and role are not theirs to read). */
export const visibleTo = (viewer: { sub: string, role: Role }, user: User): UserView =>
  viewer.role === 'admin' || viewer.sub === user.id ? user : { id: user.id, name: user.name, createdAt: user.createdAt }

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })

export const UserPatch = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Email),
  password: Type.Optional(Password),
  currentPassword: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Required to change one\'s own email or password' }))
}, { additionalProperties: false, minProperties: 1 })

export const PAGE_SIZE = 20

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'Opaque: the nextCursor of the previous page' }))
}, { additionalProperties: false })

/** The shared schemas: registered once (app.ts), referred to by routes, components in the OpenAPI document. */
export const sharedSchemas = [User, UserView]
export const UserRef = Type.Ref(User)
export const UserViewRef = Type.Ref(UserView)

export const UserList = Type.Object({
  items: Type.Array(UserViewRef),
  nextCursor: Type.Union([Type.String(), Type.Null()])
}, { description: 'A page of users and the cursor of the next one (null after the last)' })
