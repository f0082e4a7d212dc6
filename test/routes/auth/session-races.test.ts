import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { CLOCK_TOLERANCE_MS } from '../../../plugins/external/jwt.js'
import { staggered, twoInstances } from '../../helper.js'
import { bearer, register, type Pair } from '../../users.js'

// The attack of issue 14: a refresh sent together with the logout (or the reuse detection) that ends
// its login. Whatever the order PostgreSQL and Redis see them in, nothing the refresh returns may work.
const TRIALS = 200

interface Instances { a: FastifyInstance, b: FastifyInstance, user: { id: string } }

async function instances (t: Test): Promise<Instances> {
  const [a, b] = await twoInstances(t, { ACCESS_TOKEN_TTL: '10', RATE_LIMIT_MAX: '100000' })
  return { a, b, user: await register(a) }
}

const refresh = async (app: FastifyInstance, refreshToken: string) =>
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })

/**
 * What a refresh that answered 200 handed out must be dead: its refresh token refused, its access
 * token refused now and expired (clock tolerance included) before the login's deny-list entry goes.
 * Of `spent` pairs only the access token is tried: presenting a spent refresh token is itself a reuse,
 * which would revoke the login and hide a survivor of the same login.
 */
async function survivors ({ a, b }: Instances, pairs: Pair[], spent: Pair[] = []): Promise<string[]> {
  const alive: string[] = []
  for (const pair of pairs) {
    if ((await refresh(b, pair.refreshToken)).statusCode !== 401) alive.push(`refresh token ${pair.refreshToken}`)
  }
  for (const pair of [...pairs, ...spent]) {
    if ((await a.inject({ url: '/users/me', headers: bearer(pair.accessToken) })).statusCode !== 401) alive.push(`access token ${pair.accessToken}`)
    const { sub, sid, exp } = a.jwt.decode<{ sub: string, sid: string, exp: number }>(pair.accessToken)!
    const denied = await a.redis.pttl(`deny:{${sub}}:sid:${sid}`)
    if (exp * 1000 + CLOCK_TOLERANCE_MS >= Date.now() + denied) alive.push(`access token ${sid} outlives its deny-list entry (${denied} ms)`)
  }
  return alive
}

t.test(`logout and refresh of one login sent at once to two instances: in ${TRIALS} trials, nothing the refresh returned works`, async t => {
  const apps = await instances(t)
  const { a, b, user } = apps
  const raced: Pair[] = []
  for (let i = 0; i < TRIALS; i++) {
    const pair = await a.tokens.issue({ id: user.id, role: 'user', generation: 0 })
    // Half the trials let the logout go first, half the refresh.
    const logoutLater = i % 2 === 1
    const [logout, refreshed] = await Promise.all([
      staggered(logoutLater ? i : 0, async () => await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.accessToken) })),
      staggered(logoutLater ? 0 : i, async () => await refresh(b, pair.refreshToken))
    ])
    t.equal(logout.statusCode, 204)
    if (refreshed.statusCode === 200) raced.push(refreshed.json())
    else t.equal(refreshed.statusCode, 401)
  }
  t.comment(`${raced.length} of ${TRIALS} refreshes answered 200 beside the logout`)
  t.same(await survivors(apps, raced), [], 'no survivor')
})

t.test(`reuse of a spent refresh token and a refresh of its successor sent at once: in ${TRIALS} trials, the login stays revoked`, async t => {
  const apps = await instances(t)
  const { a, b, user } = apps
  const raced: Pair[] = []
  const successors: Pair[] = []
  for (let i = 0; i < TRIALS; i++) {
    const stolen = await a.tokens.issue({ id: user.id, role: 'user', generation: 0 })
    const successor: Pair = (await refresh(a, stolen.refreshToken)).json()
    const [reuse, refreshed] = await Promise.all([refresh(a, stolen.refreshToken), staggered(i, async () => await refresh(b, successor.refreshToken))])
    t.equal(reuse.statusCode, 401)
    successors.push(successor)
    if (refreshed.statusCode === 200) raced.push(refreshed.json())
    else t.equal(refreshed.statusCode, 401)
  }
  t.same(await survivors(apps, raced, successors), [], 'no survivor')
})

t.test(`one refresh token sent four times at once to two instances: in ${TRIALS} trials it is spent exactly once`, async t => {
  const { a, b, user } = await instances(t)
  const outcomes = new Map<string, number>()
  for (let i = 0; i < TRIALS; i++) {
    const pair = await a.tokens.issue({ id: user.id, role: 'user', generation: 0 })
    const answers = await Promise.all([a, b, a, b].map(async app => await refresh(app, pair.refreshToken)))
    const statuses = answers.map(res => res.statusCode).sort().join(',')
    outcomes.set(statuses, (outcomes.get(statuses) ?? 0) + 1)
  }
  t.same(Object.fromEntries(outcomes), { '200,401,401,401': TRIALS })
})

t.test('two refreshes, a logout and a reuse of one login at once leave nothing usable', async t => {
  const apps = await instances(t)
  const { a, b, user } = apps
  const first = await a.tokens.issue({ id: user.id, role: 'user', generation: 0 })
  const second: Pair = (await refresh(a, first.refreshToken)).json()
  const answers = await Promise.all([
    refresh(a, second.refreshToken), refresh(b, second.refreshToken), refresh(b, first.refreshToken),
    b.inject({ method: 'POST', url: '/auth/logout', headers: bearer(second.accessToken) })
  ])
  t.ok(answers.filter(res => res.statusCode === 200).length <= 1, 'a refresh token is spent at most once')
  t.same(await survivors(apps, answers.filter(res => res.statusCode === 200).map(res => res.json() as Pair), [second]), [])
})

t.test(`logout-all sent at once to two instances leaves the newest cut-off in Redis: in ${TRIALS} trials a login after both works`, async t => {
  const { a, b, user } = await instances(t)
  const refused: number[] = []
  let both = 0
  for (let i = 0; i < TRIALS; i++) {
    const [first, second] = [await a.tokens.issue(await credentials(a, user.id)), await a.tokens.issue(await credentials(a, user.id))]
    const answers = await Promise.all([
      a.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(first.accessToken) }),
      b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(second.accessToken) })
    ])
    // The one that bumps first may revoke the other's token before it is checked: then it is a 401.
    const statuses = answers.map(res => res.statusCode)
    t.ok(statuses.includes(204) && statuses.every(status => status === 204 || status === 401), String(statuses))
    if (statuses.every(status => status === 204)) both++
    // What POST /auth/login issues once the password matched: the generation PostgreSQL has now.
    const fresh = await a.tokens.issue(await credentials(a, user.id))
    if ((await b.inject({ url: '/users/me', headers: bearer(fresh.accessToken) })).statusCode !== 200) refused.push(i)
  }
  t.comment(`both logout-alls answered 204 in ${both} of ${TRIALS} trials`)
  t.ok(both > 0, 'the race was run')
  t.same(refused, [], 'no fresh login refused')
})

t.test('a cut-off never lowers the one Redis holds, and a deletion is final', async t => {
  const { a, user } = await instances(t)
  const key = `gen:{${user.id}}`
  await a.revocation.cutOff(user.id, 7)
  await a.revocation.cutOff(user.id, 5)
  t.equal(await a.redis.get(key), '7', 'the older write arriving last is ignored')
  t.ok(await a.redis.ttl(key) > 0, 'and the key keeps a TTL')
  await a.revocation.cutOff(user.id, 'deleted')
  await a.revocation.cutOff(user.id, 9)
  t.equal(await a.redis.get(key), 'deleted')
})

t.test('a token newer than the generation Redis holds is judged by PostgreSQL, not refused', async t => {
  const { a, user } = await instances(t)
  await a.usersRepository.bumpGeneration(user.id)
  await a.redis.set(`gen:{${user.id}}`, '0', 'EX', 60)
  const fresh = await a.tokens.issue(await credentials(a, user.id))
  t.equal((await a.inject({ url: '/users/me', headers: bearer(fresh.accessToken) })).statusCode, 200)
  t.equal(await a.redis.get(`gen:{${user.id}}`), '1', 'and Redis catches up')
})

async function credentials (app: FastifyInstance, id: string): Promise<{ id: string, role: 'user' | 'admin', generation: number }> {
  const user = await app.usersRepository.findById(id)
  return { id, role: user!.role, generation: (await app.usersRepository.generation(id))! }
}
