import Fastify from 'fastify'
import { createHmac, createSign, generateKeyPairSync, randomUUID } from 'node:crypto'
import t from 'tap'
import app, { serverOptions } from '../../../app.js'
import { loadConfig } from '../../../config.js'
import { build, testEnv } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

// The dev secret, which the test config leaves in place.
const SECRET = 'pulsewatch-development-secret-not-for-production'

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const hmac = (alg: 'sha256' | 'sha384' | 'sha512', input: string, key = SECRET): string => createHmac(alg, key).update(input).digest('base64url')

function hs (header: Record<string, unknown>, payload: Record<string, unknown>, { key = SECRET, alg = 'sha256' }: { key?: string, alg?: 'sha256' | 'sha384' | 'sha512' } = {}): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${hmac(alg, input, key)}`
}

t.test('every malformed, forged or unacceptable token answers 401 with WWW-Authenticate, never 500', async t => {
  const app = await build(t)
  const user = await register(app)
  const { accessToken } = await login(app, user)
  const claims = app.jwt.decode<Record<string, unknown>>(accessToken) ?? {}
  const now = Math.floor(Date.now() / 1000)
  const good = { ...claims, jti: randomUUID() }
  const without = (name: string): Record<string, unknown> => Object.fromEntries(Object.entries(good).filter(([key]) => key !== name))
  const [h, p, s] = accessToken.split('.') as [string, string, string]
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const rsInput = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(good)}`
  const rs256 = `${rsInput}.${createSign('RSA-SHA256').update(rsInput).sign(privateKey).toString('base64url')}`
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const confusedInput = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(good)}`
  // The first character carries six bits of the signature, so changing it always changes the signature.
  const flip = (part: string): string => (part.startsWith('A') ? 'B' : 'A') + part.slice(1)

  const cases: Record<string, string | undefined> = {
    'no header': undefined,
    'Bearer with nothing after it': 'Bearer',
    'Bearer and a space': 'Bearer ',
    'another scheme': `Basic ${accessToken}`,
    garbage: 'Bearer not-a-token',
    'three garbage parts': 'Bearer a.b.c',
    'alg none without signature': `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(good)}.`,
    'alg None with a signature': `Bearer ${b64({ alg: 'None', typ: 'JWT' })}.${b64(good)}.${s}`,
    'alg NONE': `Bearer ${b64({ alg: 'NONE' })}.${b64(good)}.`,
    HS384: `Bearer ${hs({ alg: 'HS384', typ: 'JWT' }, good, { alg: 'sha384' })}`,
    HS512: `Bearer ${hs({ alg: 'HS512', typ: 'JWT' }, good, { alg: 'sha512' })}`,
    RS256: `Bearer ${rs256}`,
    'RS256 header with an HMAC signature by the public key': `Bearer ${confusedInput}.${hmac('sha256', confusedInput, pem)}`,
    'RS256 header with an HMAC signature by the secret': `Bearer ${confusedInput}.${hmac('sha256', confusedInput)}`,
    'tampered header': `Bearer ${b64({ alg: 'HS256', typ: 'JWT', x: 1 })}.${p}.${s}`,
    'tampered payload': `Bearer ${h}.${b64({ ...claims, role: 'admin' })}.${s}`,
    'tampered signature': `Bearer ${h}.${p}.${flip(s)}`,
    expired: `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, { ...good, iat: now - 3600, exp: now - 60 })}`,
    'nbf in the future': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, { ...good, nbf: now + 3600 })}`,
    'missing exp': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('exp'))}`,
    'missing sub': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('sub'))}`,
    'missing jti': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('jti'))}`,
    'missing iat': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('iat'))}`,
    'missing iss': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('iss'))}`,
    'missing aud': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, without('aud'))}`,
    'another issuer, same key': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, { ...good, iss: 'another-service' })}`,
    'another audience, same key': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, { ...good, aud: 'another-api' })}`,
    'a sub that is not a user id': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, { ...good, sub: 'admin' })}`,
    'an unknown crit header': `Bearer ${hs({ alg: 'HS256', typ: 'JWT', crit: ['x-unknown'], 'x-unknown': 1 }, good)}`,
    'kid pointing elsewhere, signed with another key': `Bearer ${hs({ alg: 'HS256', typ: 'JWT', kid: '../../dev/null' }, good, { key: '' })}`,
    'jku pointing elsewhere, signed with another key': `Bearer ${hs({ alg: 'HS256', typ: 'JWT', jku: 'http://127.0.0.1:1/keys' }, good, { key: 'attacker' })}`,
    'a wrong secret': `Bearer ${hs({ alg: 'HS256', typ: 'JWT' }, good, { key: `${SECRET}x` })}`
  }

  for (const [name, authorization] of Object.entries(cases)) {
    const res = await app.inject({ url: '/users/me', headers: authorization === undefined ? {} : { authorization } })
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['www-authenticate'], /^Bearer realm="pulsewatch"/, `${name}: WWW-Authenticate`)
    t.match(res.json(), { statusCode: 401, error: 'Unauthorized' }, `${name}: error shape`)
    const payloadText = Buffer.from(good.jti as string).toString()
    t.notOk(res.body.includes(payloadText) || res.body.includes(user.id), `${name}: the answer echoes no claim`)
  }

  const valid = `Bearer ${hs({ alg: 'HS256', typ: 'JWT', kid: 'ignored' }, good)}`
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: valid } })).statusCode, 200, 'the same claims, correctly signed, pass: the cases above fail for their flaw alone')
})

t.test('a token of a deleted user is refused', async t => {
  const app = await build(t)
  const user = await register(app)
  const { accessToken } = await login(app, user)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(accessToken) })).statusCode, 200)
  await app.pg.query('DELETE FROM users WHERE id = $1', [user.id])
  await app.redis.del(`gen:{${user.id}}`)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(accessToken) })).statusCode, 401)
})

t.test('a token remembered as verified is refused once it expires, as if it were seen for the first time', async t => {
  const app = await build(t)
  const user = await register(app)
  const { accessToken } = await login(app, user)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(accessToken) })).statusCode, 200, 'verified, and remembered')
  const { exp } = app.jwt.decode<{ exp: number }>(accessToken) ?? { exp: 0 }
  // Past the expiry and the 5 s clock tolerance.
  t.capture(Date, 'now', () => exp * 1000 + 5001)
  const later = await app.inject({ url: '/users/me', headers: bearer(accessToken) })
  t.equal(later.statusCode, 401)
  t.match(later.json(), { message: 'Invalid or expired token' })
})

t.test('the bearer scheme is matched without regard to case, and only with one space before the token', async t => {
  const app = await build(t)
  const user = await register(app)
  const { accessToken } = await login(app, user)
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    t.equal((await app.inject({ url: '/users/me', headers: { authorization: `${scheme} ${accessToken}` } })).statusCode, 200, scheme)
  }
  for (const authorization of [`Bearer  ${accessToken}`, `Bearer\t${accessToken}`, `Bearer ${accessToken} `, `Bearer${accessToken}`]) {
    t.equal((await app.inject({ url: '/users/me', headers: { authorization } })).statusCode, 401, JSON.stringify(authorization.slice(0, 8)))
  }
})

t.test('a route of its own with onRequest: authenticate is refused at start: it belongs in the bearer scope', async t => {
  const config = loadConfig(await testEnv(t))
  const fastify = Fastify(serverOptions(config))
  t.teardown(async () => await fastify.close())
  await fastify.register(app, { config })
  await t.rejects(async () => {
    await fastify.register(async scope => { scope.get('/mine', { onRequest: scope.authenticate }, async () => 'mine') })
    await fastify.ready()
  }, /\/mine: register it in routes\/protected.ts/)
})
