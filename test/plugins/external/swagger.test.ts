import { Validator } from '@seriousme/openapi-schema-validator'
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import app, { serverOptions } from '../../../app.js'
import { loadConfig } from '../../../config.js'
import { testEnv, type Env } from '../../helper.js'
import { bearer, login, register } from '../../users.js'

interface Operation { summary?: string, tags?: string[], security?: unknown[], responses: Record<string, { description?: string }> }
interface Document { openapi: string, tags: Array<{ name: string }>, paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, { properties?: object }> } }
interface Route { method: string, url: string, hidden: boolean }

/** The app, with every route it registers recorded as Fastify declares it. */
async function buildRecording (t: Test, env?: Env): Promise<{ app: FastifyInstance, routes: Route[] }> {
  const config = loadConfig(env ?? await testEnv(t))
  const fastify = Fastify(serverOptions(config))
  t.teardown(async () => await fastify.close())
  const routes: Route[] = []
  fastify.addHook('onRoute', route => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, hidden: route.schema?.hide === true })
  })
  await fastify.register(app, { config })
  await fastify.ready()
  return { app: fastify, routes }
}

const documentOf = async (app: FastifyInstance): Promise<Document> => (await app.inject('/docs/json')).json()

/** "GET /users/{id}" for every operation in the document. */
const operationsOf = (doc: Document): string[] =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`))

const asOpenApiPath = (url: string): string => (url.length > 1 ? url.replace(/\/$/, '') : url).replace(/:(\w+)/g, '{$1}')

t.test('GET /docs/json is an OpenAPI 3 document that passes an independent validator', async t => {
  const { app } = await buildRecording(t)
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  const result = await new Validator().validate(doc)
  t.same(result.errors ?? [], [], 'no validation errors')
  t.equal(result.valid, true)
  delete doc.paths['/healthz'].get.responses['200'].description
  t.equal((await new Validator().validate(doc)).valid, false, 'the validator does reject a broken document')
})

t.test('the document lists every route the app serves and nothing else; only the docs themselves are left out', async t => {
  const { app, routes } = await buildRecording(t)
  const doc = await documentOf(app)
  // Fastify adds a HEAD for each GET by itself.
  const served = routes.filter(route => !route.hidden && route.method !== 'HEAD').map(route => `${route.method} ${asOpenApiPath(route.url)}`)
  t.same(operationsOf(doc).sort(), [...new Set(served)].sort())
  t.ok(new Set(served).size >= 13, `${new Set(served).size} operations`)
  const hidden = routes.filter(route => route.hidden).map(route => route.url)
  t.ok(hidden.every(url => url.startsWith('/docs')), `hidden: ${hidden.join(', ')}`)
  for (const url of ['/docs', '/docs/json']) {
    const res = await app.inject({ url, remoteAddress: '192.0.2.9' })
    t.equal(res.statusCode, 200, `${url} is served without a token`)
    t.notOk(res.headers['x-ratelimit-limit'], `${url} is not rate limited`)
  }
})

t.test('every operation has a summary, known tags and described responses; protected ones declare bearer security', async t => {
  const { app } = await buildRecording(t)
  const doc = await documentOf(app)
  const tags = new Set(doc.tags.map(tag => tag.name))
  const userId = crypto.randomUUID()
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      t.ok((op.summary ?? '').length > 5, `${name} has a summary`)
      t.ok(op.tags !== undefined && op.tags.length > 0 && op.tags.every(tag => tags.has(tag)), `${name} has declared tags`)
      t.ok(Object.values(op.responses).every(response => (response.description ?? '') !== ''), `${name}: every response is described`)
      // Ask the running app, not the document, whether the route wants a token and is rate limited.
      const res = await app.inject({ method: method.toUpperCase() as 'GET', url: path.replace('{id}', userId), remoteAddress: '192.0.2.10' })
      const protectedRoute = res.statusCode === 401 && String(res.headers['www-authenticate']).startsWith('Bearer')
      t.same(op.security, protectedRoute ? [{ bearerAuth: [] }] : undefined, `${name}: security ${protectedRoute ? 'bearer' : 'none'}`)
      t.equal('429' in op.responses, res.headers['x-ratelimit-limit'] !== undefined, `${name}: 429 documented exactly when rate limited`)
    }
  }
  t.match((doc.components as unknown as Record<string, unknown>).securitySchemes, { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } })
})

t.test('the User and UserView schemas, which have an $id, render as components that the routes refer to', async t => {
  const { app } = await buildRecording(t)
  const doc = await documentOf(app)
  t.ok('User' in doc.components.schemas, 'a component named User')
  t.notOk(Object.keys(doc.components.schemas).some(name => /^def-\d+$/.test(name)), 'components are named by their $id')
  t.same(Object.keys(doc.components.schemas.User?.properties ?? {}).sort(), ['createdAt', 'email', 'id', 'name', 'role', 'updatedAt'])
  t.same(Object.keys(doc.components.schemas.UserView?.properties ?? {}).sort(), ['createdAt', 'email', 'id', 'name', 'role', 'updatedAt'])
  t.same((doc.components.schemas.UserView as { required?: string[] }).required?.sort(), ['createdAt', 'id', 'name'], 'only the public fields are always there')
  t.match(doc.paths['/users']?.get?.responses['200'], { content: { 'application/json': { schema: { properties: { items: { items: { $ref: '#/components/schemas/UserView' } } } } } } })
  t.match(doc.paths['/users/{id}']?.get?.responses['200'], { content: { 'application/json': { schema: { $ref: '#/components/schemas/UserView' } } } })
  t.match(doc.paths['/users/me']?.get?.responses['200'], { content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } })
  t.notOk(JSON.stringify(doc).includes('"$id"'), 'no $id is left in the document')
})

t.test('every status the routes answer to good and bad requests is documented for that route', async t => {
  const { app } = await buildRecording(t, await testEnv(t, { RATE_LIMIT_MAX: '1000' }))
  const doc = await documentOf(app)
  const [me, other] = [await register(app), await register(app)]
  const { refreshToken } = await login(app, me)
  // A logout revokes its token (logout-all every earlier one too): those routes, and the next, log in afresh.
  let shared: string | undefined
  const tokenFor = async (name: string): Promise<Record<string, string>> => {
    const logout = name.startsWith('POST /auth/logout')
    const token = logout || shared === undefined ? (await login(app, me)).accessToken : shared
    shared = logout ? undefined : token
    return bearer(token)
  }
  // A request each operation should accept, or (PATCH and DELETE) refuse as a conflict or as forbidden.
  const good: Record<string, { id?: string, payload?: object }> = {
    'POST /auth/register': { payload: { email: `new-${me.email}`, password: 'a good password', name: 'New' } },
    'POST /auth/login': { payload: { email: me.email, password: me.password } },
    'POST /auth/refresh': { payload: { refreshToken } },
    'PATCH /users/{id}': { id: me.id, payload: { email: other.email, currentPassword: me.password } }
  }
  const seen = new Map<string, Set<number>>()
  const probe = async (name: string, options: InjectOptions): Promise<void> => {
    const res = await app.inject(options)
    seen.set(name, (seen.get(name) ?? new Set()).add(res.statusCode))
  }
  for (const name of operationsOf(doc)) {
    const [method, path] = name.split(' ') as ['GET', string]
    const at = (id: string): string => path.replace('{id}', id)
    const token = async (): Promise<Record<string, string>> => await tokenFor(name)
    await probe(name, { method, url: at(me.id) })
    await probe(name, { method, url: at(crypto.randomUUID()), headers: await token() })
    await probe(name, { method, url: at('not-a-uuid'), headers: await token() })
    await probe(name, { method, url: at(good[name]?.id ?? other.id), headers: await token(), payload: good[name]?.payload })
    if (method === 'GET') continue
    const json = { ...await token(), 'content-type': 'application/json' }
    await probe(name, { method, url: at(me.id), headers: json, payload: '{"unterminated' })
    await probe(name, { method, url: at(me.id), headers: json, payload: JSON.stringify({ unknown: 'x'.repeat(1024 * 1024) }) })
    await probe(name, { method, url: at(me.id), headers: { ...await token(), 'content-type': 'text/plain' }, payload: 'hello' })
  }
  const limited = (await buildRecording(t, await testEnv(t, { RATE_LIMIT_MAX: '1' }))).app
  for (const name of operationsOf(doc)) {
    const [method, path] = name.split(' ') as ['GET', string]
    for (let i = 0; i < 2; i++) {
      const res = await limited.inject({ method, url: path.replace('{id}', me.id), remoteAddress: `198.51.100.${operationsOf(doc).indexOf(name)}` })
      seen.get(name)!.add(res.statusCode)
    }
  }
  const all = new Set<number>()
  for (const [name, statuses] of seen) {
    const [method, path] = name.split(' ') as [string, string]
    const documented = Object.keys(doc.paths[path]![method.toLowerCase()]!.responses).map(Number)
    t.same([...statuses].filter(status => !documented.includes(status)), [], `${name} answered ${[...statuses].sort().join(', ')}; all documented`)
    for (const status of statuses) all.add(status)
  }
  const reached = [200, 201, 204, 400, 401, 403, 404, 409, 413, 415, 429]
  t.same(reached.filter(status => !all.has(status)), [], 'the probes reached every kind of answer but 503')
})
