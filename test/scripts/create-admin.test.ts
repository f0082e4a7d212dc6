import { execFile } from 'node:child_process'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { freePort } from '../../scripts/servers.js'
import { build, testEnv, type Env } from '../helper.js'
import { withoutTapLoader } from '../process.js'
import { bearer, login, register } from '../users.js'

interface Run { code: number, stdout: string, stderr: string }

/** `npm run user:create-admin -- …args` against the test's database and Redis; never rejects. */
async function createAdmin (env: Env, args: string[], password?: string): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  delete childEnv.ADMIN_PASSWORD
  if (password !== undefined) childEnv.ADMIN_PASSWORD = password
  return await new Promise(resolve => {
    execFile(...withoutTapLoader('npm', ['run', '--silent', 'user:create-admin', '--', ...args]), { env: childEnv }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout, stderr })
    })
  })
}

/** The generation that the instances read from Redis for this user, as the service caches it. */
async function cachedGeneration (t: Test, env: Env, id: string): Promise<string | null> {
  const redis = new Redis(env.REDIS_URL as string, { keyPrefix: env.REDIS_KEY_PREFIX })
  t.teardown(() => redis.disconnect())
  return await redis.get(`gen:{${id}}`)
}

const OPERATOR = 'operator password'

// Each run of the command loads its sources through tsx, a few seconds on a busy machine.
t.setTimeout(240_000)

t.test('npm run user:create-admin creates a new admin who can log in, and refuses to run again for that admin', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const run = await createAdmin(env, ['--email', ' Root@Example.com ', '--name', 'Root'], OPERATOR)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^admin: root@example\.com \([0-9a-f-]{36}\) created\n$/)
  const pair = await login(app, { email: 'root@example.com', password: OPERATOR })
  t.equal(app.jwt.decode<{ role: string }>(pair.accessToken)?.role, 'admin')
  const me = await app.inject({ url: '/users/me', headers: bearer(pair.accessToken) })
  t.match(me.json(), { email: 'root@example.com', name: 'Root', role: 'admin' })

  const again = await createAdmin(env, ['--email', 'root@example.com'], 'another password')
  t.equal(again.code, 1, 'an existing admin too: the command never keeps a password it did not set')
  t.match(again.stderr, /already exists; --promote-existing/)
  await login(app, { email: 'root@example.com', password: OPERATOR })
})

t.test('an address someone registered first is refused without --promote-existing: the squatter stays a user with its own password', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const squatter = await register(app, { email: 'ops@example.com', password: 'squatter password' })
  const run = await createAdmin(env, ['--email', 'OPS@example.com'], OPERATOR)
  t.equal(run.code, 1)
  t.equal(run.stdout, '')
  t.match(run.stderr, /^user:create-admin: refused: an account with the email ops@example\.com already exists; --promote-existing would make it an admin AND reset its password to ADMIN_PASSWORD, ending its sessions\n$/)
  t.notOk(run.stderr.includes(OPERATOR), 'the password is not in the message')
  const pair = await login(app, squatter)
  t.equal(app.jwt.decode<{ role: string }>(pair.accessToken)?.role, 'user')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: squatter.email, password: OPERATOR } })).statusCode, 401)
})

t.test('--promote-existing makes the squatted account an admin with the operator\'s password and refuses every earlier token', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const squatter = await register(app, { email: 'ops@example.com', password: 'squatter password', name: 'Squatter' })
  const earlier = await login(app, squatter)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(earlier.accessToken) })).statusCode, 200)
  t.equal(await cachedGeneration(t, env, squatter.id), '0', 'the instances have the generation cached in Redis')

  const run = await createAdmin(env, ['--email', 'ops@example.com', '--promote-existing'], OPERATOR)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, `admin: ops@example.com (${squatter.id}) promoted; its password is reset and its earlier sessions are ended`)
  t.equal(await cachedGeneration(t, env, squatter.id), '1', 'the command raised the cached cut-off')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(earlier.accessToken) })).statusCode, 401, 'the squatter\'s access token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: earlier.refreshToken } })).statusCode, 401, 'the squatter\'s refresh token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: squatter.email, password: squatter.password } })).statusCode, 401, 'the squatter\'s password')
  const admin = await login(app, { email: 'ops@example.com', password: OPERATOR })
  t.equal(app.jwt.decode<{ role: string }>(admin.accessToken)?.role, 'admin')
  t.match((await app.inject({ url: '/users/me', headers: bearer(admin.accessToken) })).json(), { id: squatter.id, role: 'admin', name: 'Squatter' })
})

t.test('--promote-existing without Redis exits 2 and says how long earlier access tokens may pass; a run with Redis completes it', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const squatter = await register(app, { email: 'ops@example.com', password: 'squatter password' })
  const earlier = await login(app, squatter)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(earlier.accessToken) })).statusCode, 200)

  const away = await createAdmin({ ...env, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, ['--email', 'ops@example.com', '--promote-existing'], OPERATOR)
  t.equal(away.code, 2)
  t.match(away.stdout, /promoted/, 'PostgreSQL has the promotion')
  t.match(away.stderr, /^user:create-admin: Redis was not told \(REDIS_URL redis:\/\/127\.0\.0\.1:\d+\/?: .+\): access tokens issued before may pass until 910 s from now; run the command again once Redis answers\n$/)
  t.notOk(away.stderr.includes(OPERATOR))
  await login(app, { email: 'ops@example.com', password: OPERATOR })

  t.equal((await createAdmin(env, ['--email', 'ops@example.com', '--promote-existing'], OPERATOR)).code, 0)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(earlier.accessToken) })).statusCode, 401)
})

t.test('the command refuses without a usable ADMIN_PASSWORD, and never prints the password', async t => {
  const env = await testEnv(t)
  const app = await build(t, env)
  const missing = await createAdmin(env, ['--email', 'root@example.com'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^user:create-admin: ADMIN_PASSWORD must hold the password, 8 to 128 characters\n$/)
  const short = await createAdmin(env, ['--email', 'root@example.com'], 'Sh0rt!')
  t.equal(short.code, 1)
  t.notOk(short.stderr.includes('Sh0rt!'))
  t.match(short.stderr, /ADMIN_PASSWORD must hold/)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'root@example.com', password: OPERATOR } })).statusCode, 401, 'no account was made')
})
