import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { loadConfig, type Config } from './config.js'

function fail (message: string): never {
  process.stderr.write(`pulsewatch: ${message}\n`)
  process.exit(1)
}

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  fail((err as Error).message)
}

const fastify = Fastify(serverOptions(config))

closeWithGrace({ delay: config.SHUTDOWN_DELAY_MS + 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) fastify.log.error({ err }, 'closing after an unexpected error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
})

try {
  await fastify.register(app, { config })
  await fastify.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  fail(`cannot start: ${(err as Error).message}`)
}
