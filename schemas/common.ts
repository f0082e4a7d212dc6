import { Type } from '@sinclair/typebox'

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.Optional(Type.String())
}, { $id: 'Error', description: 'Every error answer' })

export const NoContent = Type.Null({ description: 'No content' })
