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

/**
 * A route with `config: { rateLimit: { max, timeWindow } }` gets a budget of its own, named by its
 * method and URL (a HEAD route shares its GET route's), charged together with the default one.
 */
export function routeBudget (route: RouteOptions): Budget | undefined {
  const limit = route.config?.rateLimit
  if (limit === undefined || limit === false) return undefined
  const methods = [route.method].flat().map(method => method === 'HEAD' ? 'GET' : method)
  return createBudget(`${methods.join(',')} ${route.url}`, limit)
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
 * Who pays for a request: the user of a verified token on a route that authenticates, else the IP.
 * The client is the hash tag: on a Cluster, a client's budgets, and a user's deny-list keys, share a slot.
 */
export function budgetKey (budget: Budget, request: FastifyRequest, claims: AccessClaims | undefined): string {
  const scope = budget.name === 'default' ? 'rl' : `rl:${budget.name.replace(/[{}]/g, '')}`
  return claims === undefined ? `${scope}:ip:{${normalizeIP(request.ip)}}` : `${scope}:user:{${claims.sub}}`
}

export interface Charge { budget: Budget, count: Count }

/**
 * Sends the customary x-ratelimit-* headers and the IETF draft's for the budget that binds (the one
 * spent, else the one with the least left), with every budget's policy; over any limit, a 429.
 */
export function enforce (charges: Charge[], reply: FastifyReply, onLimited: (budget: Budget) => void): void {
  const left = ({ budget, count }: Charge): number => budget.max - count.current
  const binding = charges.reduce((tightest, charge) => left(charge) < left(tightest) || (left(charge) === left(tightest) && charge.count.ttl > tightest.count.ttl) ? charge : tightest)
  const remaining = Math.max(0, left(binding))
  const reset = Math.ceil(binding.count.ttl / 1000)
  reply.header('x-ratelimit-limit', binding.budget.max)
  reply.header('x-ratelimit-remaining', remaining)
  reply.header('x-ratelimit-reset', reset)
  reply.header('ratelimit-policy', charges.length === 1 ? binding.budget.policy : charges.map(charge => charge.budget.policy).join(', '))
  reply.header('ratelimit', `"${binding.budget.name}";r=${remaining};t=${reset}`)
  if (left(binding) >= 0) return
  onLimited(binding.budget)
  throw errors.rateLimited(reset)
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's own limit (charged beside the default budget), or false for none (health, metrics, docs). */
    rateLimit?: RouteRateLimit | false
  }
}
