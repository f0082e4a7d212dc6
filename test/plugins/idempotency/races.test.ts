import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { staggered, twoInstances } from '../../helper.js'
import { parsePrometheus, valueOf } from '../../prometheus.js'
import { accountsWithEmail, bearer, login, register } from '../../users.js'

// The attack: one request sent twice at once, to two replicas, with one Idempotency-Key. However
// the two interleave, the request runs once; the other answer is 409 (in flight) or the replay.
const REGISTRATIONS = 30
const PATCHES = 200

/** What the answer that did not run may be: a 409 with retry-after, or the first's answer replayed. */
function notRunAgain (t: Test, ran: LightMyRequestResponse, other: LightMyRequestResponse): void {
  if (other.statusCode === 409) {
    t.equal(other.json().code, 'PW_IDEMPOTENCY_IN_FLIGHT')
    t.equal(other.headers['retry-after'], '1')
  } else {
    t.equal(other.headers['idempotent-replayed'], 'true', `${other.statusCode} is a replay`)
    t.equal(other.statusCode, ran.statusCode)
    t.equal(other.body, ran.body)
  }
}

/** Of two answers, the one that ran (no replay header, not an in-flight 409) and the other. */
function split (answers: LightMyRequestResponse[]): [LightMyRequestResponse[], LightMyRequestResponse[]] {
  const ran = answers.filter(res => res.headers['idempotent-replayed'] === undefined && res.json()?.code !== 'PW_IDEMPOTENCY_IN_FLIGHT')
  return [ran, answers.filter(res => !ran.includes(res))]
}

t.test(`${REGISTRATIONS} registrations, each sent at once to two instances with one key: one account each`, async t => {
  const [a, b] = await twoInstances(t)
  let conflicts = 0
  for (let i = 0; i < REGISTRATIONS; i++) {
    const payload = { email: `r${randomBytes(5).toString('hex')}@example.com`, password: 'a good password', name: 'Racer' }
    const headers = { 'idempotency-key': randomKey(i) }
    const send = (app: FastifyInstance) => async () => await app.inject({ method: 'POST', url: '/auth/register', headers, payload })
    const answers = await Promise.all([staggered(i % 2 === 0 ? i : 0, send(a)), staggered(i % 2 === 0 ? 0 : i, send(b))])
    const [ran, other] = split(answers)
    t.equal(ran.length, 1, `trial ${i}: one request ran`)
    t.equal(ran[0]?.statusCode, 201)
    notRunAgain(t, ran[0]!, other[0]!)
    if (other[0]!.statusCode === 409) conflicts++
    t.equal(await accountsWithEmail(a, payload.email), 1, `trial ${i}: one account`)
  }
  t.ok(conflicts > 0, `the requests overlapped in flight (${conflicts} times)`)
  const counted = await Promise.all([a, b].map(async app => valueOf(parsePrometheus((await app.inject('/metrics')).body), 'pulsewatch_idempotency_requests_total', { outcome: 'conflict' }) ?? 0))
  t.equal(counted[0]! + counted[1]!, conflicts, 'each 409 is counted')
})

t.test(`${PATCHES} PATCHes, each sent at once to two instances with one key: never both run`, async t => {
  const [a, b] = await twoInstances(t, { RATE_LIMIT_MAX: '100000' })
  const user = await register(a)
  const { accessToken } = await login(a, user)
  const seen = new Set<string>()
  for (let i = 0; i < PATCHES; i++) {
    const request = { method: 'PATCH' as const, url: `/users/${user.id}`, headers: { ...bearer(accessToken), 'idempotency-key': randomKey(i) }, payload: { name: `Name ${i}` } }
    const answers = await Promise.all([staggered(i % 2 === 0 ? i : 0, async () => await a.inject(request)), staggered(i % 2 === 0 ? 0 : i, async () => await b.inject(request))])
    const [ran, other] = split(answers)
    if (ran.length !== 1) t.fail(`trial ${i}: ${ran.length} requests ran: ${answers.map(res => res.statusCode).join(', ')}`)
    else notRunAgain(t, ran[0]!, other[0]!)
    seen.add(other[0]?.statusCode === 409 ? 'conflict' : 'replay')
  }
  t.same([...seen].sort(), ['conflict', 'replay'], 'the trials met the first request both in flight and answered')
})

// Half the trials send the key quoted, as the draft writes it, half bare.
const randomKey = (trial: number): string => trial % 2 === 0 ? `"${randomUUID()}"` : randomUUID()
