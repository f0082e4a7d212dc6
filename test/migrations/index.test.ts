import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import pg from 'pg'
import t from 'tap'
import { migrate } from '../../migrations/index.js'
import { build, createDatabase, testEnv } from '../helper.js'
import { withoutTapLoader } from '../process.js'

t.test('several app instances starting at once on one empty database all come up, migrated once', async t => {
  const env = await testEnv(t)
  const apps = await Promise.all([1, 2, 3].map(async () => await build(t, env)))
  for (const app of apps) t.equal((await app.inject('/readyz')).json().status, 'ok')
  const { rows } = await apps[0]!.pg.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
  t.same(rows.map(row => Number(row.version)), [0, 1, 2, 3], 'each migration recorded once')
})

t.test('migrate() is idempotent and can go down and up again', async t => {
  const url = await createDatabase(t)
  t.match(await migrate(url), { from: 0, to: 3, applied: 3 })
  t.match(await migrate(url), { from: 3, to: 3, applied: 0 })
  t.match(await migrate(url, '0'), { from: 3, to: 0, applied: 3 })
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => await client.end())
  t.equal((await client.query("SELECT to_regclass('users') AS t")).rows[0].t, null, 'undo dropped the tables')
  t.match(await migrate(url), { from: 0, to: 3, applied: 3 })
})

t.test('migration 3 adds the purge job\'s indexes, and its undo drops them', async t => {
  const url = await createDatabase(t)
  await migrate(url)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => await client.end())
  const indexes = async (): Promise<string[]> => (await client.query<{ name: string }>(
    "SELECT indexname AS name FROM pg_indexes WHERE indexname IN ('refresh_tokens_expires_at', 'sessions_revoked_at') ORDER BY 1")).rows.map(row => row.name)
  t.same(await indexes(), ['refresh_tokens_expires_at', 'sessions_revoked_at'])
  await migrate(url, '2')
  t.same(await indexes(), [])
})

t.test('MIGRATE_ON_START=false leaves the database alone', async t => {
  const env = await testEnv(t, { MIGRATE_ON_START: 'false' })
  const app = await build(t, env)
  t.equal((await app.pg.query("SELECT to_regclass('users') AS t")).rows[0].t, null)
})

t.test('npm run migrate applies the migrations for operators', async t => {
  const url = await createDatabase(t)
  const { stdout } = await promisify(execFile)(...withoutTapLoader('npm', ['run', '--silent', 'migrate']), { env: { ...process.env, DATABASE_URL: url } })
  t.match(stdout, /version 0 → 3 \(3 applied\)/)
  t.match(await migrate(url), { applied: 0 })
})

t.test('migration 2 turns refresh-token families into sessions, revoked ones staying revoked, and back', async t => {
  const url = await createDatabase(t)
  await migrate(url, '1')
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => await client.end())
  const { rows: [user] } = await client.query("INSERT INTO users (email, name, password_hash) VALUES ('m@example.com', 'M', 'x') RETURNING id")
  const family = (revoked: boolean) => [crypto.randomUUID(), revoked] as const
  const families = [family(false), family(true)]
  for (const [id, revoked] of families) {
    for (const n of [1, 2]) {
      await client.query(`INSERT INTO refresh_tokens (token_hash, family_id, user_id, generation, expires_at, revoked_at)
        VALUES (decode(md5($1), 'hex'), $2, $3, 0, now() + interval '1 day', CASE WHEN $4 THEN now() END)`, [`${id}${n}`, id, user.id, revoked])
    }
  }
  await migrate(url)
  const { rows } = await client.query('SELECT id, user_id, revoked_at IS NOT NULL AS revoked FROM sessions ORDER BY revoked')
  t.same(rows, families.map(([id, revoked]) => ({ id, user_id: user.id, revoked })))
  t.equal((await client.query('SELECT count(*)::int AS n FROM refresh_tokens WHERE session_id IS NOT NULL')).rows[0].n, 4)
  await migrate(url, '1')
  const back = await client.query('SELECT family_id, revoked_at IS NOT NULL AS revoked FROM refresh_tokens ORDER BY revoked')
  t.same(back.rows.map(row => [row.family_id, row.revoked]), families.flatMap(f => [[f[0], f[1]], [f[0], f[1]]]))
})
