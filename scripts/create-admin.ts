// `npm run user:create-admin -- --email ada@example.com [--name Ada]`, with the password in ADMIN_PASSWORD:
// creates an admin, or gives an existing user (whose password stays) the admin role. No route grants it.
import { parseArgs } from 'node:util'
import pg from 'pg'
import { loadConfig } from '../config.js'
import { hash } from '../plugins/app/passwords.js'
import { createUsersRepository } from '../plugins/app/users-repository.js'

try {
  const { values } = parseArgs({ options: { email: { type: 'string' }, name: { type: 'string', default: 'Administrator' } } })
  const email = values.email?.trim().toLowerCase()
  const password = process.env.ADMIN_PASSWORD ?? ''
  if (email === undefined || !/^[^\s@]+@[^\s@]+$/.test(email)) throw new Error('--email is required')
  if (password.length < 8 || password.length > 128) throw new Error('ADMIN_PASSWORD must hold the password, 8 to 128 characters')
  const pool = new pg.Pool({ connectionString: loadConfig(process.env).DATABASE_URL, max: 1 })
  try {
    const user = await createUsersRepository(pool).promote({ email, name: values.name ?? 'Administrator', passwordHash: await hash(password) })
    console.log(`admin: ${user.email} (${user.id})`)
  } finally {
    await pool.end()
  }
} catch (err) {
  console.error(`user:create-admin: ${(err as Error).message}`)
  process.exitCode = 1
}
