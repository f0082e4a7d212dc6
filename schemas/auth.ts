import { Type, type Static } from '@sinclair/typebox'
import { Uuid } from './common.js'
import { Email, Name, Password, Role } from './user.js'

/** The claims of an access token; fast-jwt has checked the signature, exp, nbf, iss and aud. */
export const AccessClaims = Type.Object({
  sub: Uuid({ description: 'The user' }),
  jti: Uuid({ description: 'This token' }),
  sid: Uuid({ description: 'The login (session) the token belongs to' }),
  gen: Type.Integer({ minimum: 0, description: 'The user\'s token generation when the token was issued' }),
  role: Role,
  iat: Type.Integer(),
  exp: Type.Integer()
})

export type AccessClaims = Static<typeof AccessClaims>

const RefreshToken = Type.String({ minLength: 16, maxLength: 128, description: 'An opaque refresh token' })

export const Registration = Type.Object({ email: Email, password: Password, name: Name }, { additionalProperties: false })
export const Credentials = Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false })
export const RefreshRequest = Type.Object({ refreshToken: RefreshToken }, { additionalProperties: false })
export const LogoutRequest = Type.Union([Type.Object({ refreshToken: Type.Optional(RefreshToken) }, { additionalProperties: false }), Type.Null()])

export const TokenPair = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' })
}, { description: 'A new access token and refresh token' })
