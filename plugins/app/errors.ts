import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'

// Errors that mean "PostgreSQL cannot answer now", as opposed to a bug: network codes, and the
// server's admin-shutdown, cannot-connect-now, too-many-connections and connection-exception classes.
const UNAVAILABLE_CODES = /^(E(CONNREFUSED|CONNRESET|TIMEDOUT|HOSTUNREACH|NETUNREACH|PIPE|AI_AGAIN)|57P0[123]|53300|08\d{3})$/
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|Client has encountered a connection error/

/**
 * An error that the error handler answers with this status and, for a 5xx, still this message; with
 * `retryAfter` (seconds), also with a retry-after header.
 */
export function httpError (statusCode: number, message: string, retryAfter?: number): FastifyError {
  return Object.assign(new Error(message), { statusCode, code: '', expose: true, name: 'HttpError' }, retryAfter === undefined ? {} : { retryAfter })
}

export function isUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  return (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) || UNAVAILABLE_MESSAGES.test(err.message)
}

/**
 * Every error leaves in Fastify's shape, `{ statusCode, error, message, code? }`. A client error keeps
 * its message (Fastify's and ours are written for clients); a server error is logged in full and
 * answered with a generic message, so that no stack, SQL or internal name ever reaches a client.
 */
export default fp(async function errors (fastify) {
  fastify.setErrorHandler((err: FastifyError, request, reply) => {
    let statusCode = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (statusCode === 500 && isUnavailable(err)) statusCode = 503
    const client = statusCode < 500 || err.expose === true
    // A 5xx of our own making (expose) is a dependency's outage, which the Redis breaker logs once when
    // it begins: one error line per request during it would flood the logs. Anything else is a bug.
    if (statusCode >= 500) {
      if (err.expose === true) request.log.debug({ err }, 'request refused: a dependency is unavailable')
      else request.log.error({ err }, 'request failed')
    }
    if (typeof err.retryAfter === 'number' && Number.isFinite(err.retryAfter)) reply.header('retry-after', Math.max(1, Math.ceil(err.retryAfter)))
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
    /** Set on errors whose message is meant for the client even with a 5xx status. */
    expose?: boolean
    /** Seconds after which the request may succeed: sent as the retry-after header. */
    retryAfter?: number
  }
}
