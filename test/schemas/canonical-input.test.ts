import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, testEnv } from '../helper.js'
import { bearer, register } from '../users.js'

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

t.test('every other spelling of a user id is a 400 on GET, PATCH and DELETE, and changes nothing', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const victim = await register(app)
  const admin = await app.tokens.issue({ id: (await register(app)).id, role: 'admin', generation: 0 })
  const victimLogin = await app.tokens.issue({ id: victim.id, role: 'user', generation: 0 })
  const spellings = [victim.id.toUpperCase(), `urn:uuid:${victim.id}`, `{${victim.id}}`, victim.id.replaceAll('-', ''), victim.id.replace(/[a-f]/, c => c.toUpperCase())]
  for (const id of spellings) {
    t.equal((await app.inject({ url: `/users/${id}`, headers: bearer(admin.accessToken) })).statusCode, 400, `GET ${id}`)
    const patch = await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: bearer(admin.accessToken), payload: { password: 'taken over by the admin' } })
    t.equal(patch.statusCode, 400, `PATCH ${id}`)
    t.equal((await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: bearer(admin.accessToken) })).statusCode, 400, `DELETE ${id}`)
  }
  const { rows } = await app.pg.query('SELECT token_generation FROM users WHERE id = $1', [victim.id])
  t.same(rows, [{ token_generation: 0 }], 'the victim is there, its tokens of generation 0 still its own')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(victimLogin.accessToken) })).statusCode, 200)
})

t.test('a NUL byte, another control character or an unpaired surrogate in any text field is a 400, never a 500', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000', LOGIN_RATE_LIMIT_MAX: '1000' }))
  const user = await register(app)
  const { accessToken } = await app.tokens.issue({ id: user.id, role: 'user', generation: 0 })
  const bad = ['nul \u0000 inside', 'bell \u0007 rings', 'lone \ud800 surrogate', 'c1 \u0085 control']
  const routes: Array<{ method: 'POST' | 'PATCH', url: string, valid: Record<string, string>, fields: string[] }> = [
    { method: 'POST', url: '/auth/register', valid: { email: 'nul@example.com', password: 'a good password', name: 'Nul' }, fields: ['email', 'name'] },
    { method: 'PATCH', url: `/users/${user.id}`, valid: { name: 'Nul' }, fields: ['email', 'name'] },
    { method: 'POST', url: '/auth/login', valid: { email: user.email, password: user.password }, fields: ['email'] },
    { method: 'POST', url: '/auth/refresh', valid: { refreshToken: 'x'.repeat(43) }, fields: ['refreshToken'] }
  ]
  for (const route of routes) {
    for (const field of route.fields) {
      for (const value of bad) {
        const res = await app.inject({ method: route.method, url: route.url, headers: bearer(accessToken), payload: { ...route.valid, [field]: value.padEnd(20, 'x') } })
        t.ok(res.statusCode === 400 || (field === 'refreshToken' && res.statusCode === 401), `${route.method} ${route.url} ${field} ${JSON.stringify(value)}: ${res.statusCode}`)
      }
    }
  }
  const odd = { email: 'odd@example.com', password: 'pass\u0000word \ud83d\ude00 ok', name: 'Zoë 😀' }
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: odd })).statusCode, 201, 'any password, and any printable name, is taken')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: odd.email, password: odd.password } })).statusCode, 200)
})

t.test('every malformed cursor is a 400, never a 500', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const user = await register(app)
  await register(app)
  const auth = bearer((await app.tokens.issue({ id: user.id, role: 'user', generation: 0 })).accessToken)
  const page = async (cursor?: string) => await app.inject({ url: '/users', query: cursor === undefined ? { limit: '1' } : { limit: '1', cursor }, headers: auth })
  const first = await page()
  const next = first.json().nextCursor as string
  t.equal((await page(next)).statusCode, 200, 'a cursor the service issued works')

  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const [, id] = JSON.parse(Buffer.from(next, 'base64url').toString()) as [string, string]
  t.equal((await page(encode(['1', id]))).statusCode, 200, 'a well-formed cursor is only a position: 1 µs after the epoch')
  const tampered = [
    encode(['2026-13-45 25:61:00+00', id]), encode(['2026-12-02 03:10:45.123456+00', id]),
    encode([1, id]), encode(['12345678901234567', id]), encode(['1e5', id]), encode(['123', id.toUpperCase()]), encode(['123', id, 'x']), encode(['0123', id]), encode(['-0', id]), encode(['+123', id]),
    encode([]), encode({}), encode('123'), encode(null), 'garbage', 'A', encode(['123', `${id}\u0000`])
  ]
  for (let i = 0; i < 100; i++) tampered.push(Array.from(randomBytes(1 + (i % 60)), byte => BASE64URL[byte % 64]).join(''))
  const answers = new Map<number, string[]>()
  for (const cursor of tampered) {
    const { statusCode } = await page(cursor)
    answers.set(statusCode, [...answers.get(statusCode) ?? [], cursor])
  }
  t.same([...answers.keys()], [400], `every tampered cursor is refused: ${JSON.stringify(Object.fromEntries(answers))}`.slice(0, 300))
})

t.test('a token verifies only in the spelling it was issued: the other spellings of its signature are 401', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const user = await register(app)
  const { accessToken } = await app.tokens.issue({ id: user.id, role: 'user', generation: 0 })
  // An HS256 signature is 32 bytes, 43 characters: the last one carries 4 bits and 2 unused ones.
  const last = BASE64URL.indexOf(accessToken.at(-1)!)
  const spellings = [0, 1, 2, 3].map(low => accessToken.slice(0, -1) + BASE64URL[(last & ~3) | low])
  t.equal(new Set(spellings).size, 4)
  t.ok(spellings.includes(accessToken))
  for (const token of spellings) {
    const res = await app.inject({ url: '/users/me', headers: bearer(token) })
    t.equal(res.statusCode, token === accessToken ? 200 : 401, token === accessToken ? 'the issued spelling' : 'another spelling')
  }
  for (const token of [`${accessToken}=`, accessToken.replaceAll('-', '+').replaceAll('_', '/'), ` ${accessToken}`, `${accessToken}.`]) {
    if (token === accessToken) continue
    t.equal((await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode, 401, JSON.stringify(token.slice(-6)))
  }
})
