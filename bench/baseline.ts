// The baseline: bare Fastify 5 answering GET /users/:id with the same JSON as the service, and nothing
// else (no logger, hooks, authentication, rate limit, cache or database). It serialises through the
// service's own schema of that route (UserView), so both servers send the same bytes with the same serializer.
// The bench runs it as a process of its own: `node dist/bench/baseline.js`, with PORT, HOST and
// BENCH_USER (the JSON of the user that the service answers with).
import Fastify from 'fastify'
import { UserView } from '../schemas/user.js'

const user: unknown = JSON.parse(process.env.BENCH_USER ?? 'null')
if (user === null) throw new Error('BENCH_USER is not set')

const fastify = Fastify({ logger: false })
fastify.get('/users/:id', { schema: { response: { 200: UserView } } }, async () => user)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { fastify.close().then(() => process.exit(0), () => process.exit(1)) })
}

await fastify.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' })
