import type { FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'

export interface TestUser { id: string, email: string, password: string, name: string }

/** Registers a user through the route and returns it with its password. */
export async function register (app: FastifyInstance, fields: Partial<Omit<TestUser, 'id'>> = {}): Promise<TestUser> {
  const input = { email: `u${randomBytes(5).toString('hex')}@example.com`, password: 'a good password', name: 'Test User', ...fields }
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: input })
  if (res.statusCode !== 201) throw new Error(`register answered ${res.statusCode}: ${res.body}`)
  return { ...input, email: input.email.toLowerCase(), id: res.json().id }
}

export interface Pair { accessToken: string, refreshToken: string, tokenType: string, expiresIn: number }

export async function login (app: FastifyInstance, user: { email: string, password: string }): Promise<Pair> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
  if (res.statusCode !== 200) throw new Error(`login answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** How many accounts have this (lowercased) email: 1 once registered, never 2. */
export async function accountsWithEmail (app: FastifyInstance, email: string): Promise<number> {
  const { rows } = await app.pg.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE email = $1', [email])
  return rows[0]!.n
}

export const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` })
