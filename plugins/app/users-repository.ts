import type { PostgresDb } from '@fastify/postgres'
import type { Role, User } from '../../schemas/user.js'

interface UserRow {
  id: string
  email: string
  name: string
  role: Role
  created_at: Date
  updated_at: Date
}

export interface Credentials { id: string, email: string, role: Role, passwordHash: string, generation: number }

const COLUMNS = 'id, email, name, role, created_at, updated_at'

const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  role: row.role,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

export interface Page { items: User[], last?: { sortKey: string, id: string } }

const isUniqueViolation = (err: unknown): boolean => (err as { code?: string }).code === '23505'

/** The users table, in parameterised SQL. Knows nothing of caching or tokens. */
export function createUsersRepository (pg: Pick<PostgresDb, 'query'>) {
  return {
    async create (input: { email: string, name: string, passwordHash: string, role?: Role }): Promise<User | 'exists'> {
      try {
        const { rows } = await pg.query<UserRow>(
          `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
          [input.email, input.name, input.passwordHash, input.role ?? 'user'])
        return toUser(rows[0] as UserRow)
      } catch (err) {
        if (isUniqueViolation(err)) return 'exists'
        throw err
      }
    },

    async findById (id: string): Promise<User | undefined> {
      const { rows } = await pg.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id])
      return rows[0] === undefined ? undefined : toUser(rows[0])
    },

    /** What a login checks, by email or by id. */
    async findCredentials (by: { email: string } | { id: string }): Promise<Credentials | undefined> {
      const { rows } = await pg.query<{ id: string, email: string, role: Role, password_hash: string, token_generation: number }>(
        `SELECT id, email, role, password_hash, token_generation FROM users WHERE ${'email' in by ? 'email' : 'id'} = $1`, ['email' in by ? by.email : by.id])
      const row = rows[0]
      return row === undefined ? undefined : { id: row.id, email: row.email, role: row.role, passwordHash: row.password_hash, generation: row.token_generation }
    },

    /** Stores a stronger hash of the same password, unless the password changed meanwhile. */
    async rehash (id: string, from: string, to: string): Promise<void> {
      await pg.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, from, to])
    },

    /** The user's token generation, or undefined when the user no longer exists. */
    async generation (id: string): Promise<number | undefined> {
      const { rows } = await pg.query<{ token_generation: number }>('SELECT token_generation FROM users WHERE id = $1', [id])
      return rows[0]?.token_generation
    },

    /** Users in creation order, after the given position; `last` is set when more may follow. */
    async list (limit: number, after?: { sortKey: string, id: string }): Promise<Page> {
      const { rows } = await pg.query<UserRow & { sort_key: string }>(
        `SELECT ${COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint::text AS sort_key FROM users
         WHERE $2::bigint IS NULL OR (created_at, id) > ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid)
         ORDER BY created_at, id LIMIT $1`,
        [limit + 1, after?.sortKey ?? null, after?.id ?? null])
      const more = rows.length > limit
      const page = rows.slice(0, limit)
      const tail = page.at(-1)
      return { items: page.map(toUser), ...(more && tail !== undefined ? { last: { sortKey: tail.sort_key, id: tail.id } } : {}) }
    },

    /**
     * Changes the given fields; a new password also bumps the token generation (every earlier token
     * is refused). Undefined for an unknown user, 'exists' when the email belongs to another.
     */
    async update (id: string, patch: { email?: string, name?: string, passwordHash?: string }): Promise<{ user: User, generation: number, passwordChanged: boolean } | 'exists' | undefined> {
      const passwordChanged = patch.passwordHash !== undefined
      try {
        const { rows } = await pg.query<UserRow & { token_generation: number }>(
          `UPDATE users SET email = coalesce($2, email), name = coalesce($3, name), password_hash = coalesce($4, password_hash),
             token_generation = token_generation + $5, updated_at = clock_timestamp()
           WHERE id = $1 RETURNING ${COLUMNS}, token_generation`,
          [id, patch.email ?? null, patch.name ?? null, patch.passwordHash ?? null, passwordChanged ? 1 : 0])
        const row = rows[0]
        return row === undefined ? undefined : { user: toUser(row), generation: row.token_generation, passwordChanged }
      } catch (err) {
        if (isUniqueViolation(err)) return 'exists'
        throw err
      }
    },

    async remove (id: string): Promise<boolean> {
      const { rowCount } = await pg.query('DELETE FROM users WHERE id = $1', [id])
      return rowCount === 1
    },

    /**
     * Makes an existing user an admin with the given password (and name, if given). The same statement
     * bumps the token generation, so no token of whoever held the account before is honoured. Undefined
     * for an unknown email.
     */
    async promote (input: { email: string, passwordHash: string, name?: string }): Promise<{ user: User, generation: number } | undefined> {
      const { rows } = await pg.query<UserRow & { token_generation: number }>(
        `UPDATE users SET role = 'admin', password_hash = $2, name = coalesce($3, name),
           token_generation = token_generation + 1, updated_at = clock_timestamp()
         WHERE email = $1 RETURNING ${COLUMNS}, token_generation`,
        [input.email, input.passwordHash, input.name ?? null])
      const row = rows[0]
      return row === undefined ? undefined : { user: toUser(row), generation: row.token_generation }
    },

    /** Rejects every token issued so far: returns the new generation, or undefined for an unknown user. */
    async bumpGeneration (id: string): Promise<number | undefined> {
      const { rows } = await pg.query<{ token_generation: number }>(
        'UPDATE users SET token_generation = token_generation + 1 WHERE id = $1 RETURNING token_generation', [id])
      return rows[0]?.token_generation
    }
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
