import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { NODE_LTS, ROOT } from '../../scripts/tools.js'
import { CHART } from './support.js'
import { args, dockerignore, execForm, flag, of, properties, readStages, type Stage } from './docker.js'

const stages = readStages()
const runtime = stages.at(-1) as Stage
const runs = (stage: Stage): string[] => of(stage, 'RUN').map(run => run.getRawArgumentsContent() ?? '')
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'))

t.test('the Dockerfile installs with npm ci, builds, and prunes to production dependencies before the runtime stage', async t => {
  t.ok(stages.length >= 2, 'multi-stage')
  const commands = stages.slice(0, -1).flatMap(runs).join(' && ')
  t.match(commands, /npm ci\b/)
  t.match(commands, /npm run build\b/)
  t.match(commands, /npm (prune --omit=dev|ci --omit=dev)\b/)
  t.same(runs(runtime), [], 'the runtime stage installs nothing itself')
  t.same(of(runtime, 'COPY').filter(copy => flag(copy, 'from') == null).map(args), [],
    'the runtime stage takes only built files, never the build context')
})

t.test('every stage starts from the exact Node LTS slim image that the tests run the server on', async t => {
  for (const stage of stages) {
    t.equal(stage.from.getImageName(), 'node', `stage ${stage.name}`)
    t.match(stage.from.getImageTag(), new RegExp(`^${NODE_LTS.version.replaceAll('.', '\\.')}-[a-z]+-slim$`), 'an exact version, slim')
  }
  t.equal(Number(NODE_LTS.version.split('.')[0]) % 2, 0, 'an even major: a line that becomes LTS')
  t.ok(Number(NODE_LTS.version.split('.')[0]) > 20, 'Node 20 is past its end of life')
})

t.test('the image runs `node dist/server.js` in exec form as a numeric non-root user, the one the chart runs as', async t => {
  t.same(of(runtime, 'CMD').map(execForm), [['node', 'dist/server.js']])
  t.same(of(runtime, 'ENTRYPOINT'), [], 'no shell wrapper in front of node: SIGTERM reaches the app')
  const user = args(of(runtime, 'USER').at(-1) ?? runtime.from)[0] ?? ''
  const [uid, gid] = user.split(':')
  t.match(user, /^\d+(:\d+)?$/, 'numeric, so that Kubernetes can verify runAsNonRoot')
  t.not(uid, '0')
  t.equal(values.securityContext.runAsUser, Number(uid))
  t.equal(values.securityContext.runAsGroup, Number(gid ?? uid))
  t.same(of(runtime, 'STOPSIGNAL').map(i => args(i)[0]).filter(s => s !== 'SIGTERM'), [])
})

t.test('no ENV or ARG in any stage carries a secret, and the runtime runs with NODE_ENV=production', async t => {
  const secretName = /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$|DATABASE_URL|REDIS_URL/i
  const variables = stages.flatMap(stage => [...of(stage, 'ENV'), ...of(stage, 'ARG')].flatMap(properties))
  t.same(variables.filter(([name, value]) => secretName.test(name) || /:\/\/[^/]*@/.test(value)), [])
  t.same(of(runtime, 'ENV').flatMap(properties), [['NODE_ENV', 'production']])
  t.same(secretName.test('JWT_SECRET') && secretName.test('DATABASE_URL'), true, 'the rule itself catches the app\'s secrets')
})

t.test('.dockerignore keeps git, dependencies, builds, caches, tests and secrets out of the build context', async t => {
  const ignored = dockerignore()
  for (const path of ['.git/config', 'node_modules/fastify/package.json', 'dist/server.js', '.cache/helm/v3.17.2/helm',
    '.env', '.env.production', 'deploy.key', 'test/routes/health.test.ts', 'charts/pulsewatch/values.yaml', 'npm-debug.log', 'coverage/lcov.info',
    'scripts/servers.ts', 'scripts/tools.ts', 'scripts/dev.ts']) {
    t.ok(ignored(path), `${path} is left out`)
  }
  for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'server.ts', 'app.ts',
    'config.ts', 'plugins/external/redis.ts', 'routes/health.ts', 'migrations/001.do.users.sql',
    // The operator commands compile into dist/scripts: `kubectl exec … -- node dist/scripts/create-admin.js`.
    'scripts/create-admin.ts', 'scripts/migrate.ts']) {
    t.notOk(ignored(path), `${path} is sent`)
  }
})

t.test('the .dockerignore reader follows Docker\'s rules for **, parents, and ! exceptions', async t => {
  const ignored = dockerignore('# comment\n/build\n**/*.tmp\nsecrets\n!secrets/public.pem\n')
  t.ok(ignored('build/out.js'), 'a folder pattern takes everything under it')
  t.notOk(ignored('src/build/out.js'), 'patterns are anchored at the context root')
  t.ok(ignored('a/b/c.tmp'))
  t.ok(ignored('secrets/private.pem'))
  t.notOk(ignored('secrets/public.pem'), 'the last matching line wins')
})

t.test('docker-compose runs the chart\'s dev Redis and PostgreSQL images, Redis without any persistence', async t => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'))
  const redis = compose.services.redis
  t.equal(redis.image, `redis:${values.redis.image.tag}`)
  t.match(redis.image, /^redis:7\.\d+\.\d+$/)
  t.same(redis.command, ['redis-server', '--save', '', '--appendonly', 'no'])
  t.same(redis.healthcheck.test, ['CMD', 'redis-cli', 'ping'])
  t.equal(compose.services.postgres.image, `postgres:${values.postgresql.image.tag}`)
  const api = compose.services.api
  t.equal(api.build, '.')
  t.equal(api.read_only, true)
  t.same(api.cap_drop, ['ALL'])
  t.equal(new URL(api.environment.REDIS_URL).host, 'redis:6379')
  t.equal(api.depends_on.redis.condition, 'service_healthy')
})
