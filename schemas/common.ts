import { Type, type StringOptions } from '@sinclair/typebox'

/**
 * A UUID in its one canonical spelling, lower case: PostgreSQL also takes upper case, braces and
 * `urn:uuid:`, and each other spelling would name a second Redis key for the same user.
 */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
export const Uuid = (options: StringOptions = {}) => Type.String({ ...options, pattern: UUID_PATTERN })

/** Text without control characters or unpaired surrogates (PostgreSQL refuses NUL; the others only make trouble). */
export const Text = (options: StringOptions) => Type.String({ ...options, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]*$' })

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.Optional(Type.String())
}, { $id: 'Error', description: 'Every error answer' })

export const NoContent = Type.Null({ description: 'No content' })

// What each error status means on this API, as the OpenAPI document tells consumers.
const REASONS = {
  400: 'Malformed JSON, a body, path or query value that does not match the schema, or a malformed Idempotency-Key',
  401: 'Not authenticated: wrong credentials, or a missing, malformed, expired or revoked token',
  403: 'Only the user themself or an admin may do this',
  404: 'No such user',
  409: 'Another user already has this email; or the first request with this Idempotency-Key is still in progress (retry after retry-after)',
  413: 'The body is over 1 MiB',
  415: 'The body is not JSON',
  422: 'This Idempotency-Key was already used for a different request',
  429: 'Rate limit exceeded: retry after the seconds in the retry-after header',
  503: 'A dependency cannot answer now (PostgreSQL, or Redis for token checks and Idempotency-Key); retry shortly'
} as const

type ErrorStatus = keyof typeof REASONS

/** Error answers for a route's response schema: one per status, each described. */
export function errorResponses<S extends ErrorStatus> (...statuses: S[]): Record<S, typeof ErrorSchema> {
  const described = (status: S): typeof ErrorSchema => ({ ...ErrorSchema, description: REASONS[status] })
  return Object.fromEntries(statuses.map(status => [status, described(status)])) as Record<S, typeof ErrorSchema>
}
