import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import requestId, { genReqId } from '../../../plugins/app/request-id.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

async function bare (t: Test): Promise<FastifyInstance> {
  const app = Fastify({ genReqId })
  t.teardown(async () => await app.close())
  await app.register(requestId)
  app.get('/', async request => ({ id: request.id }))
  return app
}

t.test('a well-formed X-Request-Id is the request\'s id and comes back in the answer', async t => {
  const app = await bare(t)
  for (const id of ['abc-123', 'trace.id:span_7', 'x'.repeat(128)]) {
    const res = await app.inject({ url: '/', headers: { 'x-request-id': id } })
    t.equal(res.json().id, id, `${id.slice(0, 20)}: kept`)
    t.equal(res.headers['x-request-id'], id, `${id.slice(0, 20)}: answered`)
  }
})

t.test('a missing, malformed or overlong X-Request-Id is replaced by a fresh UUID', async t => {
  const app = await bare(t)
  const sent: Array<string | undefined> = [undefined, '', 'has space', 'x'.repeat(129), '<script>', 'a,b', 'é']
  const ids = []
  for (const header of sent) {
    const res = await app.inject({ url: '/', headers: header === undefined ? {} : { 'x-request-id': header } })
    t.match(res.headers['x-request-id'], UUID, `${JSON.stringify(header)?.slice(0, 20)}: a UUID instead`)
    t.equal(res.json().id, res.headers['x-request-id'])
    ids.push(res.json().id)
  }
  t.equal(new Set(ids).size, sent.length, 'a new one each time')
})

t.test('an answer the route never gave carries the id too', async t => {
  const app = await bare(t)
  const res = await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'lost-1' } })
  t.equal(res.statusCode, 404)
  t.equal(res.headers['x-request-id'], 'lost-1')
})
