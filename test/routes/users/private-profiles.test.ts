import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { bearer, register } from '../../users.js'

const PUBLIC = ['createdAt', 'id', 'name']
const FULL = ['createdAt', 'email', 'id', 'name', 'role', 'updatedAt']

t.test('another user sees only id, name and createdAt, from a cache miss and from a hit; the user and admins see everything', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const [owner, stranger, boss] = [await register(app), await register(app), await register(app)]
  const token = async (id: string, role: 'user' | 'admin') => bearer((await app.tokens.issue({ id, role, generation: 0 })).accessToken)
  const viewers = { stranger: await token(stranger.id, 'user'), owner: await token(owner.id, 'user'), admin: await token(boss.id, 'admin') }

  const first = await app.inject({ url: `/users/${owner.id}`, headers: viewers.stranger })
  t.equal(first.headers['x-cache'], 'miss')
  const again = await app.inject({ url: `/users/${owner.id}`, headers: viewers.stranger })
  t.equal(again.headers['x-cache'], 'hit')
  for (const res of [first, again]) {
    t.same(Object.keys(res.json()).sort(), PUBLIC, `a stranger, ${res.headers['x-cache']}`)
    t.notMatch(res.body, owner.email)
    t.notMatch(res.body, /"role"/)
  }
  for (const viewer of ['owner', 'admin'] as const) {
    const res = await app.inject({ url: `/users/${owner.id}`, headers: viewers[viewer] })
    t.equal(res.headers['x-cache'], 'hit', 'the same cache entry serves both views')
    t.same(Object.keys(res.json()).sort(), FULL, viewer)
    t.equal(res.json().email, owner.email)
  }
})

t.test('GET /users pages show another user\'s email and role only to admins, and each user its own', async t => {
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const users = [await register(app), await register(app), await register(app)]
  const asUser = bearer((await app.tokens.issue({ id: users[0]!.id, role: 'user', generation: 0 })).accessToken)
  const asAdmin = bearer((await app.tokens.issue({ id: users[1]!.id, role: 'admin', generation: 0 })).accessToken)
  for (const attempt of ['miss', 'hit']) {
    const page = await app.inject({ url: '/users?limit=100', headers: asUser })
    t.equal(page.headers['x-cache'], attempt)
    const items = page.json().items as Array<Record<string, unknown>>
    t.equal(items.length, 3)
    for (const item of items) t.same(Object.keys(item).sort(), item.id === users[0]!.id ? FULL : PUBLIC, `${attempt}: ${item.id === users[0]!.id ? 'its own' : 'another'}`)
    t.notOk(items.some(item => item.role !== undefined && item.id !== users[0]!.id), 'no other user\'s role')
  }
  const all = (await app.inject({ url: '/users?limit=100', headers: asAdmin })).json().items as Array<Record<string, unknown>>
  t.ok(all.every(item => Object.keys(item).sort().join() === FULL.join()), 'an admin sees every field')
})
