import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from './errors.js'
import type { Credentials } from './users-repository.js'

/**
 * `credentials.check`: the one way a password is checked, for a login and for re-authentication.
 * It goes through the login limits (429 with retry-after when spent), costs the same for an unknown
 * email as for a wrong password, and answers the account's credentials, or undefined for a wrong pair.
 */
export default fp(async function credentials (fastify) {
  const { loginLimit, usersRepository, passwords } = fastify

  // A hash made with older parameters (scrypt, or weaker Argon2id) is replaced at a successful login,
  // the one moment the password is known. A failure (a full hashing queue) leaves the old one.
  async function upgrade (request: FastifyRequest, found: Credentials, password: string): Promise<void> {
    try {
      await usersRepository.rehash(found.id, found.passwordHash, await passwords.hash(password))
    } catch (err) {
      request.log.warn({ err }, 'password rehash failed; the old hash stays')
    }
  }

  fastify.decorate('credentials', {
    async check (request: FastifyRequest, email: string, password: string): Promise<Credentials | undefined> {
      const attempt = await loginLimit.attempt(request.ip, email)
      if (attempt.retryAfter !== undefined) throw errors.loginThrottled(attempt.retryAfter)
      let found: Credentials | undefined
      let valid: boolean
      try {
        found = await usersRepository.findCredentials({ email })
        valid = await passwords.verify(password, found?.passwordHash)
      } catch (err) {
        // PostgreSQL down or the hashing queue full (503): no guess was judged, none is counted.
        await loginLimit.giveBack(request.ip, email, attempt)
        throw err
      }
      if (!valid || found === undefined) return undefined
      await loginLimit.succeeded(request.ip, email, attempt)
      if (passwords.needsRehash(found.passwordHash)) await upgrade(request, found, password)
      return found
    }
  })
}, { name: 'credentials', dependencies: ['login-limit', 'repositories', 'passwords'] })

declare module 'fastify' {
  interface FastifyInstance {
    credentials: { check: (request: FastifyRequest, email: string, password: string) => Promise<Credentials | undefined> }
  }
}
