import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { Address6 } from 'ip-address'
import { isIPv6 } from 'node:net'
import type { AccessClaims } from '../../schemas/auth.js'
import { errors } from '../app/errors.js'
import type { Count } from './counters.js'

/** A route's own limit, in the shape @fastify/rate-limit documents for route config (`timeWindow` in ms). */
interface RouteRateLimit { max: number, timeWindow: number }

/** A budget: what a client may spend in a window, and the IETF policy header that names it, built once. */
export interface Budget { name: string, max: number, windowMs: number, policy: string }

export function createBudget (name: string, { max, timeWindow }: RouteRateLimit): Budget {
  return { name, max, windowMs: timeWindow, policy: `"${name}";q=${max};w=${Math.ceil(timeWindow / 1000)}` }
}

/** A route with `config: { rateLimit: { max, timeWindow } }` gets a budget of its own, named by its method and URL. */
export function routeBudget (route: RouteOptions): Budget | undefined {
  const limit = route.config?.rateLimit
  if (limit === undefined || limit === false) return undefined
  return createBudget(`${[route.method].flat().join(',')} ${route.url}`, limit)
}

/** A client IP as the name of its budget: IPv6 clients by their /64, which one subscriber usually holds. */
export function normalizeIP (ip: string | undefined): string {
  // Fastify has no address for a request whose socket is already gone: it still gets a budget.
  if (ip === undefined) return 'unknown'
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return new Address6(`${ip}/64`).startAddress().correctForm()
}

/**
 * Who pays for a request: the user of a verified token on a route that authenticates (the key shares
 * the user's hash tag with the deny-list, so one script reads both on a Cluster), else the IP.
 */
export function budgetKey (budget: Budget, request: FastifyRequest, claims: AccessClaims | undefined): string {
  const scope = budget.name === 'default' ? 'rl' : `rl:${budget.name}`
  return claims === undefined ? `${scope}:ip:${normalizeIP(request.ip)}` : `${scope}:user:{${claims.sub}}`
}

/** Sends the budget's headers, the customary x-ratelimit-* and the IETF draft's; over the limit, a 429. */
export function enforce (budget: Budget, count: Count, reply: FastifyReply, onLimited: (budget: Budget) => void): void {
  const remaining = Math.max(0, budget.max - count.current)
  const reset = Math.ceil(count.ttl / 1000)
  reply.header('x-ratelimit-limit', budget.max)
  reply.header('x-ratelimit-remaining', remaining)
  reply.header('x-ratelimit-reset', reset)
  reply.header('ratelimit-policy', budget.policy)
  reply.header('ratelimit', `"${budget.name}";r=${remaining};t=${reset}`)
  if (count.current <= budget.max) return
  onLimited(budget)
  throw errors.rateLimited(reset)
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's own limit, or false for none (health, metrics, docs); absent: the default budget. */
    rateLimit?: RouteRateLimit | false
  }
}
