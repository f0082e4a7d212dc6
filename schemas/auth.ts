import { Type } from '@sinclair/typebox'
import { Email, Name, Password } from './user.js'

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
