// `npm run migrate [target]`: applies pending migrations to DATABASE_URL (or migrates to `target`).
import { loadConfig, redactUrl } from '../config.js'
import { migrate } from '../migrations/index.js'

try {
  const config = loadConfig(process.env)
  const { from, to, applied } = await migrate(config.DATABASE_URL, process.argv[2])
  console.log(`${redactUrl(config.DATABASE_URL)}: version ${from} → ${to} (${applied} applied)`)
} catch (err) {
  console.error(`migrate: ${(err as Error).message}`)
  process.exitCode = 1
}
