import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import pg from 'pg'
import t from 'tap'
import { migrate } from '../migrations/index.js'
import { build, createDatabase, testEnv } from './helper.js'
import { withoutTapLoader } from './process.js'

t.test('several app instances starting at once on one empty database all come up, migrated once', async t => {
  const env = await testEnv(t)
  const apps = await Promise.all([1, 2, 3].map(async () => await build(t, env)))
  for (const app of apps) t.equal((await app.inject('/readyz')).json().status, 'ok')
  const { rows } = await apps[0]!.pg.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
  t.same(rows.map(row => Number(row.version)), [0, 1], 'each migration recorded once')
})

t.test('migrate() is idempotent and can go down and up again', async t => {
  const url = await createDatabase(t)
  t.match(await migrate(url), { from: 0, to: 1, applied: 1 })
  t.match(await migrate(url), { from: 1, to: 1, applied: 0 })
  t.match(await migrate(url, '0'), { from: 1, to: 0, applied: 1 })
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => await client.end())
  t.equal((await client.query("SELECT to_regclass('users') AS t")).rows[0].t, null, 'undo dropped the tables')
  t.match(await migrate(url), { from: 0, to: 1, applied: 1 })
})

t.test('MIGRATE_ON_START=false leaves the database alone', async t => {
  const env = await testEnv(t, { MIGRATE_ON_START: 'false' })
  const app = await build(t, env)
  t.equal((await app.pg.query("SELECT to_regclass('users') AS t")).rows[0].t, null)
})

t.test('npm run migrate applies the migrations for operators', async t => {
  const url = await createDatabase(t)
  const { stdout } = await promisify(execFile)(...withoutTapLoader('npm', ['run', '--silent', 'migrate']), { env: { ...process.env, DATABASE_URL: url } })
  t.match(stdout, /version 0 → 1 \(1 applied\)/)
  t.match(await migrate(url), { applied: 0 })
})
