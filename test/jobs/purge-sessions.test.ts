import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { purgeSessions } from '../../jobs/purge-sessions.js'
import { build } from '../helper.js'
import { register } from '../users.js'

const DAY_MS = 86_400_000

t.test('the purge deletes exactly the logins revoked and the refresh tokens expired before the cut-off, batch by batch', async t => {
  const app = await build(t)
  const { id: userId } = await register(app)
  const now = Date.now()
  const ago = (days: number): Date => new Date(now - days * DAY_MS)
  const session = async (revokedDaysAgo?: number): Promise<string> => {
    const id = randomUUID()
    await app.pg.query('INSERT INTO sessions (id, user_id, revoked_at) VALUES ($1, $2, $3)', [id, userId, revokedDaysAgo === undefined ? null : ago(revokedDaysAgo)])
    return id
  }
  const token = async (sessionId: string, expiresDaysAgo: number, spent = false): Promise<string> => {
    const hash = randomBytes(32)
    await app.pg.query('INSERT INTO refresh_tokens (token_hash, session_id, generation, expires_at, used_at) VALUES ($1, $2, 0, $3, $4)',
      [hash, sessionId, ago(expiresDaysAgo), spent ? ago(expiresDaysAgo + 1) : null])
    return hash.toString('hex')
  }

  const live = await session()
  const liveTokens = [await token(live, -7), await token(live, -6, true), await token(live, 29)]
  const oldOfLive = await token(live, 31)
  const revokedLongAgo = await session(31)
  await token(revokedLongAgo, -7)
  const revokedLately = await session(1)
  const revokedLatelyToken = await token(revokedLately, -7)
  const expired = await session()
  await token(expired, 40)
  await token(expired, 35, true)
  await token(expired, 31)
  const expiredLately = await session()
  const expiredLatelyToken = await token(expiredLately, 2)
  const tokenless = await session()

  const purged = await purgeSessions(app.pg.pool, { before: ago(30), batchSize: 2 })
  t.same(purged, { sessions: 2, refreshTokens: 5 }, 'the revoked login and its token; the expired login and its three tokens; one old token of a live login')

  const { rows: sessions } = await app.pg.query<{ id: string }>('SELECT id FROM sessions ORDER BY id')
  t.same(sessions.map(row => row.id).sort(), [live, revokedLately, expiredLately, tokenless].sort())
  const { rows: tokens } = await app.pg.query<{ hash: string }>('SELECT encode(token_hash, \'hex\') AS hash FROM refresh_tokens')
  t.same(tokens.map(row => row.hash).sort(), [...liveTokens, revokedLatelyToken, expiredLatelyToken].sort())
  t.notOk(tokens.some(row => row.hash === oldOfLive))

  t.same(await purgeSessions(app.pg.pool, { before: ago(30), batchSize: 2 }), { sessions: 0, refreshTokens: 0 }, 'a second run finds nothing')
})
