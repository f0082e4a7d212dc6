import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import formats from 'ajv-formats'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { build, testEnv } from '../../helper.js'
import { bearer, login, register, type TestUser } from '../../users.js'

type Schema = Record<string, any>
interface Parameter { name: string, in: 'query' | 'path' | 'header', required?: boolean, schema?: Schema }
interface Content { content?: Record<string, { schema?: Schema }> }
interface Operation { parameters?: Parameter[], requestBody?: Content & { required?: boolean }, security?: unknown[], responses: Record<string, Content> }
interface Document { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, Schema> } }

// Bodies and answers are JSON, taken as they are; query, path and header values are text, which the
// service coerces to the declared type (API.md: "Query strings are coerced as usual").
const json = formats.default(new Ajv({ strict: false, allErrors: true }))
const text = formats.default(new Ajv({ strict: false, coerceTypes: 'array' }))
const allows = (schema: Schema, value: unknown, asText = false): boolean => asText
  ? text.validate({ type: 'object', properties: { value: schema } }, { value: String(value) })
  : json.validate(schema, value)

/** Values the schema itself suggests, on both sides of every bound it sets; the schema then sorts them. */
function candidates (schema: Schema, real: unknown[] = []): unknown[] {
  const { minimum = 0, maximum = 0, minLength = 1, maxLength = 0 } = schema
  const values = [...real, ...real.map(value => String(value).toUpperCase()), schema.default, ...(schema.enum ?? []),
    minimum, maximum, minimum - 1, maximum + 1, 12.5, -1, 'a string with spaces!',
    'a'.repeat(Math.max(minLength - 1, 0)), 'a'.repeat(minLength), 'a'.repeat(maxLength + 1)]
  if (schema.format === 'uuid') values.push(randomUUID())
  if (schema.format === 'email') values.push(`walk-${randomUUID()}@example.com`)
  if (schema.format === 'date-time') values.push(new Date().toISOString())
  return [...new Set(values.filter(value => value !== undefined))]
}

/** A fresh value the schema allows (a new email each time), or undefined when the generator finds none. */
const example = (schema: Schema, asText = false): unknown => candidates(schema).find(value => allows(schema, value, asText))

const show = (value: unknown): string => typeof value === 'string' && value.length > 24 ? `"${value.slice(0, 8)}…" (${value.length} characters)` : JSON.stringify(value)

t.test('every parameter, request body and answer in the OpenAPI document agrees with what the routes do', async t => {
  // A slow Redis under a loaded test machine would trip the breaker and answer 503 (closed mode), which says
  // nothing about the document: give commands time.
  const app = await build(t, await testEnv(t, { RATE_LIMIT_MAX: '100000', REDIS_COMMAND_TIMEOUT_MS: '5000' }))
  const doc: Document = (await app.inject('/docs/json')).json()
  const me = await register(app)
  await register(app)
  const cursor: unknown = (await app.inject({ url: '/users?limit=1', headers: bearer((await login(app, me)).accessToken) })).json().nextCursor
  t.type(cursor, 'string', 'a real cursor to walk with: the nextCursor of a first page')

  // The few values a schema cannot describe: ids and tokens that must exist to be accepted.
  const known: Record<string, (user: TestUser) => Promise<unknown>> = {
    id: async user => user.id,
    cursor: async () => cursor,
    refreshToken: async user => (await login(app, user)).refreshToken
  }

  // A logout revokes its token (logout-all every earlier one too): those routes, and the next, log in afresh.
  // DELETE acts on a throwaway user, with that user's own token.
  let shared: string | undefined
  const actor = async (method: string, path: string): Promise<{ user: TestUser, headers: Record<string, string> }> => {
    if (method === 'delete') {
      const user = await register(app)
      return { user, headers: bearer((await login(app, user)).accessToken) }
    }
    const logout = path.startsWith('/auth/logout')
    const token = logout || shared === undefined ? (await login(app, me)).accessToken : shared
    shared = logout ? undefined : token
    return { user: me, headers: bearer(token) }
  }

  /** An object body with the required properties (and enough optional ones for minProperties), each valid. */
  const bodyFor = async (schema: Schema, user: TestUser): Promise<Record<string, unknown>> => {
    const properties: Record<string, Schema> = schema.properties ?? {}
    const required: string[] = schema.required ?? []
    const names = [...new Set([...required, ...Object.keys(properties)])].slice(0, Math.max(required.length, schema.minProperties ?? 0))
    const body: Record<string, unknown> = {}
    for (const name of names) body[name] = name in known ? await known[name]!(user) : example(properties[name]!)
    return body
  }

  const validators = new Map<Schema, ValidateFunction>()
  const errorsOf = (schema: Schema, value: unknown): ErrorObject[] => {
    if (!validators.has(schema)) validators.set(schema, json.compile({ ...schema, components: doc.components }))
    const validate = validators.get(schema)!
    return validate(value) ? [] : validate.errors ?? []
  }

  const statuses = new Set<number>()
  const walked: string[] = []
  const operations: string[] = []
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      await t.test(`${name}: what the document says about its parameters, body and answers is what the route does`, async t => {
        const params = op.parameters ?? []
        const bodySchema = op.requestBody?.content?.['application/json']?.schema

        /** What is wrong with an answer: a status the document does not list, or a body its schema rejects. */
        const problems = (res: LightMyRequestResponse): unknown[] => {
          const documented = op.responses[res.statusCode]
          if (documented === undefined) return [`${res.statusCode} is not among ${Object.keys(op.responses).join(', ')}`]
          const type = String(res.headers['content-type'] ?? '').split(';')[0]
          const media = Object.entries(documented.content ?? {}).find(([key]) => key.split(';')[0] === type)?.[1]
          if (res.body === '' && media === undefined) return []
          if (media?.schema === undefined) return [`no schema for a ${res.statusCode} answer in ${type}`]
          return errorsOf(media.schema, type === 'application/json' ? res.json() : res.body)
        }

        /** Sends a request valid by the document but for `change` (undefined leaves a value out), expecting a 400 or not. */
        const send = async (what: string, expect: 'bad' | 'good', change: { params?: Record<string, unknown>, body?: unknown } = {}): Promise<void> => {
          const { user, headers } = await actor(method, path)
          const values: Record<string, unknown> = {}
          for (const p of params) {
            if (p.name in known) values[p.name] = await known[p.name]!(user)
            else if (p.required === true) values[p.name] = example(p.schema ?? {}, true)
          }
          Object.assign(values, change.params)
          const given = (where: string): Record<string, string> => Object.fromEntries(params
            .filter(p => p.in === where && values[p.name] !== undefined).map(p => [p.name, String(values[p.name])]))
          const options: InjectOptions = {
            method: method.toUpperCase() as 'GET',
            url: path.replace(/{(\w+)}/g, (_, key: string) => encodeURIComponent(String(values[key]))),
            query: given('query'),
            headers: { ...given('header'), ...(op.security === undefined ? {} : headers) }
          }
          const payload = 'body' in change ? change.body : bodySchema === undefined ? undefined : await bodyFor(bodySchema, user)
          if (payload !== undefined) options.payload = payload as object
          const res = await app.inject(options)
          statuses.add(res.statusCode)
          const message = `${name} ${what}: ${expect === 'bad' ? '' : 'not '}400`
          if (expect === 'bad') t.equal(res.statusCode, 400, message)
          else t.not(res.statusCode, 400, `${message} (got ${res.statusCode})`)
          t.same(problems(res), [], `${name} ${what}: the ${res.statusCode} answer is documented and its body matches the schema`)
        }

        operations.push(name)
        await send('with values generated from the document', 'good')
        for (const p of params) {
          walked.push(`${name} ${p.in} ${p.name}`)
          const schema = p.schema ?? {}
          if (p.in === 'path') t.equal(p.required, true, `${name}: the path parameter ${p.name} is required`)
          else {
            const required = p.required === true
            await send(`without the ${required ? 'required' : 'optional'} ${p.in} parameter ${p.name}`, required ? 'bad' : 'good', { params: { [p.name]: undefined } })
          }
          const real = p.name in known ? [await known[p.name]!(me)] : []
          for (const value of real) t.ok(allows(schema, value, true), `${name}: a real ${p.name} (${String(value)}) satisfies the documented schema`)
          const sent = { good: real.length, bad: 0 }
          for (const value of candidates(schema, real)) {
            if (p.in === 'path' && value === '') continue
            const allowed = allows(schema, value, true)
            const shown = `with ${p.name}=${show(value)}, which the schema ${allowed ? 'allows' : 'forbids'}`
            // An opaque value (an id, a cursor) that fits the schema may still be unknown: only real ones are sent as good.
            if (allowed && real.length > 0) continue
            const kind = allowed ? 'good' : 'bad'
            sent[kind]++
            await send(shown, kind, { params: { [p.name]: value } })
          }
          t.ok(sent.good > 0 && sent.bad > 0, `${name}: the walk sent ${p.name} values that the schema allows (${sent.good}) and forbids (${sent.bad})`)
        }

        if (bodySchema !== undefined) {
          const required = op.requestBody?.required === true
          await send(`without a body, which the document calls ${required ? 'required' : 'optional'}`, required ? 'bad' : 'good', { body: undefined })
          for (const property of bodySchema.required ?? []) {
            const body = await bodyFor(bodySchema, me)
            delete body[property]
            await send(`without the required property ${property}`, 'bad', { body })
          }
          if (bodySchema.additionalProperties === false) {
            await send('with an unknown property, which additionalProperties: false forbids', 'bad', { body: { ...await bodyFor(bodySchema, me), unknown: 'x' } })
          }
          for (const [property, schema] of Object.entries<Schema>(bodySchema.properties ?? {})) {
            for (const value of candidates(schema).filter(value => !allows(schema, value))) {
              await send(`with ${property}: ${show(value)}, which the schema forbids`, 'bad', { body: { ...await bodyFor(bodySchema, me), [property]: value } })
            }
          }
        }
      })
    }
  }

  t.ok(operations.length >= 13, `the walk covered ${operations.length} operations`)
  t.ok(walked.length >= 5, `the walk covered ${walked.length} parameters: ${walked.join(', ')}`)
  t.ok(walked.includes('GET /users query limit'), 'among them the limit of GET /users')
  const user = doc.paths['/users/me']?.get?.responses[200]?.content?.['application/json']?.schema ?? {}
  t.not(errorsOf(user, { ...me, role: 'root' }).length, 0, 'the answer check does reject a body that breaks its schema (a password, a bad role)')
  t.same([200, 201, 204, 400, 401].filter(status => !statuses.has(status)), [], 'the walk reached successes (a real id answers 200 and 204) as well as refusals')
})
