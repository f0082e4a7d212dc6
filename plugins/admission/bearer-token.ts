import type { JWT } from '@fastify/jwt'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyRequest } from 'fastify'
import { AccessClaims } from '../../schemas/auth.js'
import { CLOCK_TOLERANCE_MS } from '../external/jwt.js'

const Claims = TypeCompiler.Compile(AccessClaims)

const SCHEME = 'bearer '

// Tokens already verified, until they expire: a client sends the same token for minutes, and the
// HMAC and two JSON parses dominated the hot path's CPU (docs/benchmarks.md). About 1 KB each.
const VERIFIED_MAX = 2000

const SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Whether a token is spelled as it was issued. fast-jwt decodes base64url leniently: the low bits
 * that a signature's last character leaves unused are ignored, so four spellings of one token verify.
 * The header and payload are signed as text, so only the signature can be spelled another way.
 */
function isCanonical (token: string): boolean {
  if (!SHAPE.test(token)) return false
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

/**
 * `claimsOf(request)`: the claims of the request's bearer token when it verifies (HS256, our key, iss
 * and aud, not expired, not before its nbf, every claim present and well typed), else undefined.
 */
export function createBearerToken (jwt: JWT) {
  const verified = new Map<string, AccessClaims>()

  function verify (token: string): AccessClaims | undefined {
    if (!isCanonical(token)) return undefined
    try {
      // @fastify/jwt throws a variety of errors for malformed tokens: all mean "no".
      const claims: unknown = jwt.verify(token)
      return Claims.Check(claims) ? claims : undefined
    } catch {
      return undefined
    }
  }

  return function claimsOf (request: FastifyRequest): AccessClaims | undefined {
    const header = request.headers.authorization
    if (header === undefined || header.length <= SCHEME.length) return undefined
    // The scheme is case-insensitive; clients nearly always send it as `Bearer`.
    if (!header.startsWith('Bearer ') && header.slice(0, SCHEME.length).toLowerCase() !== SCHEME) return undefined
    const token = header.slice(SCHEME.length)
    const known = verified.get(token)
    if (known !== undefined) {
      if (known.exp * 1000 + CLOCK_TOLERANCE_MS > Date.now()) return known
      verified.delete(token)
    }
    const claims = verify(token)
    if (claims !== undefined) {
      // The oldest entry makes room: a Map iterates in insertion order.
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string)
      verified.set(token, claims)
    }
    return claims
  }
}
