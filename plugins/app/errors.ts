import createError from '@fastify/error'
import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'

// Errors that mean "PostgreSQL cannot answer now", as opposed to a bug: network codes, and the
// server's admin-shutdown, cannot-connect-now, too-many-connections and connection-exception classes.
const UNAVAILABLE_CODES = /^(E(CONNREFUSED|CONNRESET|TIMEDOUT|HOSTUNREACH|NETUNREACH|PIPE|AI_AGAIN)|57P0[123]|53300|08\d{3})$/
const POSTGRES_WARN_INTERVAL_MS = 10_000
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|Client has encountered a connection error/

/** What every error of the catalogue inherits: its message is written for clients, even with a 5xx. */
class ServiceError extends Error {}
// @fastify/error only puts the base's prototype under its errors; its type asks for a callable ErrorConstructor.
const Base = ServiceError as unknown as ErrorConstructor

const define = <Args extends unknown[] = []>(code: string, statusCode: number, message: string) =>
  createError<string, number, Args>(code, message, statusCode, Base)

/** An error whose message names the seconds to wait, which are also sent as the retry-after header. */
function retrying (code: string, statusCode: number, message: string, args = (seconds: number): unknown[] => [seconds]) {
  const Err = define<unknown[]>(code, statusCode, message)
  return (seconds: number): FastifyError => Object.assign(new Err(...args(seconds)), { retryAfter: seconds })
}

/**
 * Every error the service throws, by name: `throw errors.userNotFound()`. The code is sent as the
 * answer's `code` and never changes; docs/errors.md lists them (test/plugins/app/errors.test.ts checks).
 */
export const errors = {
  nothingToChange: define('PW_NOTHING_TO_CHANGE', 400, 'body must have a field to change'),
  currentPasswordRequired: define('PW_CURRENT_PASSWORD_REQUIRED', 400, 'body/currentPassword is required to change your own email or password'),
  invalidCursor: define('PW_INVALID_CURSOR', 400, 'querystring/cursor is not a cursor this service issued'),
  idempotencyKeyInvalid: define('PW_IDEMPOTENCY_KEY_INVALID', 400, 'headers/idempotency-key must be one string of 1 to 255 printable ASCII characters, quoted ("…") or a bare token'),
  tokenMissing: define('PW_TOKEN_MISSING', 401, 'Missing bearer token'),
  tokenInvalid: define('PW_TOKEN_INVALID', 401, 'Invalid or expired token'),
  tokenRevoked: define('PW_TOKEN_REVOKED', 401, 'Token has been revoked'),
  invalidCredentials: define('PW_INVALID_CREDENTIALS', 401, 'Invalid email or password'),
  refreshTokenInvalid: define('PW_REFRESH_TOKEN_INVALID', 401, 'Invalid or expired refresh token'),
  currentPasswordWrong: define('PW_CURRENT_PASSWORD_WRONG', 401, 'The current password is wrong'),
  notSelfOrAdmin: define('PW_NOT_SELF_OR_ADMIN', 403, 'Only the user or an admin may change this user'),
  userNotFound: define('PW_USER_NOT_FOUND', 404, 'User not found'),
  emailTaken: define('PW_EMAIL_TAKEN', 409, 'A user with this email already exists'),
  idempotencyInFlight: retrying('PW_IDEMPOTENCY_IN_FLIGHT', 409, 'A request with this Idempotency-Key is still in progress, retry in %d second%s', seconds => [seconds, seconds === 1 ? '' : 's']),
  idempotencyKeyReused: define('PW_IDEMPOTENCY_KEY_REUSED', 422, 'This Idempotency-Key was used for a different request: use a new key for a new request'),
  rateLimited: retrying('PW_RATE_LIMITED', 429, 'Rate limit exceeded, retry in %d second%s', seconds => [seconds, seconds === 1 ? '' : 's']),
  loginThrottled: retrying('PW_LOGIN_THROTTLED', 429, 'Too many failed logins, retry in %d seconds'),
  hashingBusy: retrying('PW_HASHING_BUSY', 503, 'Too many passwords are being checked, retry in %d seconds'),
  revocationUnavailable: define('PW_REVOCATION_UNAVAILABLE', 503, 'Token revocation cannot be checked right now, try again shortly'),
  revocationNotStored: define('PW_REVOCATION_NOT_STORED', 503, 'The revocation could not be stored safely, try again shortly'),
  idempotencyUnavailable: retrying('PW_IDEMPOTENCY_UNAVAILABLE', 503, 'Idempotency-Key cannot be honoured while Redis is unavailable, retry in %d seconds'),
  draining: define('PW_DRAINING', 503, 'Draining for shutdown')
}

function isUnavailable (err: Error): boolean {
  const code = (err as { code?: unknown }).code
  return (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) || UNAVAILABLE_MESSAGES.test(err.message)
}

/**
 * Every error leaves in Fastify's shape, `{ statusCode, error, message, code? }`. A client error keeps
 * its message and code (Fastify's and ours are written for clients), and so does a 5xx of the
 * catalogue; any other server error is logged in full and answered with a generic message, so that
 * no stack, SQL or internal name ever reaches a client.
 */
export default fp(async function errors (fastify) {
  // PostgreSQL has no breaker to say when it goes away: its first refusal warns, then one per interval.
  let quietUntil = 0
  fastify.setErrorHandler((err: FastifyError, request, reply) => {
    const ours = err instanceof ServiceError
    let statusCode = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const unavailable = (ours && statusCode === 503) || (statusCode === 500 && isUnavailable(err))
    if (unavailable) statusCode = 503
    // A dependency that cannot answer is an outage, which the Redis breaker logs once when it begins:
    // a line per request would flood the logs. Any other 5xx is a bug, whatever its `expose` says.
    if (unavailable && !ours && Date.now() >= quietUntil) {
      quietUntil = Date.now() + POSTGRES_WARN_INTERVAL_MS
      request.log.warn({ err }, 'request refused: PostgreSQL is unavailable (the next refusals for 10 s are logged at debug)')
    } else if (unavailable) request.log.debug({ err }, 'request refused: a dependency is unavailable')
    else if (statusCode >= 500) request.log.error({ err }, 'request failed')
    if (typeof err.retryAfter === 'number' && Number.isFinite(err.retryAfter)) reply.header('retry-after', Math.max(1, Math.ceil(err.retryAfter)))
    const client = statusCode < 500 || ours
    return reply.code(statusCode).send({
      statusCode,
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: client ? err.message : statusCode === 503 ? 'A dependency is unavailable, try again shortly' : 'Internal Server Error',
      ...(client && typeof err.code === 'string' && err.code !== '' ? { code: err.code } : {})
    })
  })
}, { name: 'errors' })

declare module 'fastify' {
  interface FastifyError {
    /** Seconds after which the request may succeed: sent as the retry-after header. */
    retryAfter?: number
  }
}
