import FakeTimers from '@sinonjs/fake-timers'
import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyRequest } from 'fastify'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createBearerToken } from '../../../plugins/admission/bearer-token.js'
import { CLOCK_TOLERANCE_MS } from '../../../plugins/external/jwt.js'

const KEY = 'k'.repeat(32)

/** @fastify/jwt on a bare instance, verifying as plugins/external/jwt.ts does, and the verifier on it. */
async function bare () {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: KEY, sign: { algorithm: 'HS256', expiresIn: 60 }, verify: { algorithms: ['HS256'], clockTolerance: CLOCK_TOLERANCE_MS } })
  await app.ready()
  const claimsOf = createBearerToken(app.jwt)
  const claims = { sub: randomUUID(), jti: randomUUID(), sid: randomUUID(), gen: 0, role: 'user' as const }
  const ask = (authorization?: string) => claimsOf({ headers: { authorization } } as unknown as FastifyRequest)
  // Some payloads here are malformed on purpose: past the type that the app's own signing obeys.
  const sign = (payload: object): string => app.jwt.sign(payload as never)
  return { sign, claims, ask, token: sign(claims) }
}

t.test('a token verifies, and one remembered stops verifying once its exp and the clock tolerance are past', async t => {
  const clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => clock.uninstall())
  const { ask, token, claims } = await bare()
  t.match(ask(`Bearer ${token}`), claims, 'verified, and remembered')
  clock.tick(60_000 + CLOCK_TOLERANCE_MS - 1000)
  t.match(ask(`Bearer ${token}`), claims, 'within the tolerance')
  clock.tick(2000)
  t.equal(ask(`Bearer ${token}`), undefined, 'past it, remembered or not')
})

t.test('only the spelling that was issued verifies, under a bearer scheme in any case', async t => {
  const { ask, token, claims } = await bare()
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) t.match(ask(`${scheme} ${token}`), claims, scheme)
  // The last base64url character of a 32-byte signature carries 4 unused bits: another spelling decodes the same.
  const last = token.at(-1)!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const sibling = alphabet[alphabet.indexOf(last) ^ 1]!
  t.equal(ask(`Bearer ${token.slice(0, -1)}${sibling}`), undefined, 'a sibling spelling of the signature')
  for (const header of [undefined, '', 'Bearer ', `Basic ${token}`, `Bearer  ${token}`, `Bearer ${token}.`, `Bearer ${token}=`]) {
    t.equal(ask(header), undefined, JSON.stringify(header?.slice(0, 9)))
  }
})

t.test('a token signed with our key but missing a claim, or with one of the wrong type, does not verify', async t => {
  const { sign, ask, claims } = await bare()
  const { sid: _sid, ...noSid } = claims
  t.equal(ask(`Bearer ${sign(noSid)}`), undefined, 'no sid')
  t.equal(ask(`Bearer ${sign({ ...claims, gen: '0' })}`), undefined, 'gen as a string')
  t.equal(ask(`Bearer ${sign({ ...claims, role: 'root' })}`), undefined, 'an unknown role')
  t.equal(ask(`Bearer ${sign({ ...claims, sub: claims.sub.toUpperCase() })}`), undefined, 'an upper-case id')
})
