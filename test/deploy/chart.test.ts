import type { Deployment } from 'kubernetes-types/apps/v1.js'
import type { ConfigMap, Container, Secret, Service } from 'kubernetes-types/core/v1.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigSchema, loadConfig } from '../../config.js'
import { ROOT } from '../../scripts/tools.js'
import { CHART, DEV, MAJORS, PROD, decode, one, render, runHelm, selects, templateArgs, API, apiContainer, type Manifest } from './support.js'

// Variables that come from the Secret rather than the ConfigMap.
const SECRET_VARIABLES = ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD', 'QUEUE_REDIS_URL']

for (const major of MAJORS) {
  t.test(`helm ${major} lints the chart with --strict for the default, dev and prod values`, async t => {
    for (const values of [[], ['-f', DEV], ['-f', PROD]]) {
      const { code, stdout, stderr } = await runHelm(major, ['lint', '--strict', CHART, ...values])
      t.equal(code, 0, `${values.join(' ') || 'defaults'}: ${stdout}${stderr}`)
      t.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
    }
  })
}

t.test('helm 3 and helm 4 render the same production manifests', async t => {
  t.same(await render(3, [PROD]), await render(4, [PROD]))
})

t.test('the dev values run the seed\'s Redis without persistence, probed with redis-cli ping, as redis:6379', async t => {
  for (const major of MAJORS) {
    const docs = await render(major, [DEV])
    const redis = one<Deployment>(docs, 'Deployment', `${API}-redis`)
    const container = redis.spec?.template.spec?.containers[0] as Container
    t.match(container.image, /^docker\.io\/library\/redis:7\.\d+\.\d+$/, 'an exact 7.x tag')
    t.same(container.args, ['--save', '', '--appendonly', 'no'])
    t.same(container.readinessProbe?.exec?.command, ['redis-cli', 'ping'])
    t.same(container.livenessProbe?.exec?.command, ['redis-cli', 'ping'])
    t.equal(container.securityContext?.readOnlyRootFilesystem, true)

    const service = one<Service>(docs, 'Service', 'redis')
    t.same(service.spec?.ports?.map(p => [p.port, p.targetPort]), [[6379, 6379]])
    t.ok(selects(service.spec?.selector, redis.spec?.template.metadata?.labels), 'the redis Service selects the Redis pod')
    t.equal(decode(one<Secret>(docs, 'Secret').data).REDIS_URL, 'redis://redis:6379')
  }
})

t.test('the dev values run one API replica on an in-chart PostgreSQL whose password the Secret carries', async t => {
  const docs = await render(4, [DEV])
  t.equal(one<Deployment>(docs, 'Deployment', API).spec?.replicas, 1)
  const postgres = one<Deployment>(docs, 'Deployment', `${API}-postgresql`)
  t.match(postgres.spec?.template.spec?.containers[0]?.image, /^docker\.io\/library\/postgres:\d+\.\d+$/)
  t.ok(selects(one<Service>(docs, 'Service', `${API}-postgresql`).spec?.selector, postgres.spec?.template.metadata?.labels))
  const secret = decode(one<Secret>(docs, 'Secret').data)
  const url = new URL(secret.DATABASE_URL ?? '')
  t.equal(url.host, `${API}-postgresql:5432`)
  t.equal(url.password, secret.POSTGRES_PASSWORD)
  t.ok((secret.JWT_SECRET ?? '').length >= 32, 'a generated JWT secret long enough for production')
})

t.test('the API Service and Deployment select the API pods and never the dev Redis or PostgreSQL pods', async t => {
  const docs = await render(4, [DEV])
  const pods = docs.filter((d): d is Manifest & Deployment => d.kind === 'Deployment')
  const service = one<Service>(docs, 'Service', API)
  for (const pod of pods) {
    const labels = pod.spec?.template.metadata?.labels
    t.equal(selects(service.spec?.selector, labels), pod.metadata.name === API, pod.metadata.name)
    t.equal(selects(one<Deployment>(docs, 'Deployment', API).spec?.selector.matchLabels, labels), pod.metadata.name === API)
  }
})

t.test('the rendered dev ConfigMap and Secret are a configuration the app accepts in production mode', async t => {
  const docs = await render(4, [DEV])
  const env = { ...one<ConfigMap>(docs, 'ConfigMap').data, ...decode(one<Secret>(docs, 'Secret').data) }
  const config = loadConfig(env)
  t.equal(config.NODE_ENV, 'production')
  t.equal(config.PORT, 3000)
  t.equal(config.LOG_LEVEL, 'debug')
  t.equal(config.MIGRATE_ON_START, true)
})

t.test('every variable of the app\'s ConfigSchema can be set through the chart', async t => {
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'))
  // PORT and HOST come from containerPort, METRICS_PORT from metrics.port.
  const settable = new Set([...Object.keys(schema.properties.config.properties), 'PORT', 'HOST', 'METRICS_PORT', ...SECRET_VARIABLES])
  t.same(Object.keys(ConfigSchema.properties).filter(name => !settable.has(name)), [],
    'add the variable to values.schema.json (config) and the chart README, or to the Secret if it is one')
})

t.test('every variable the dev and prod pods are given is one the app reads', async t => {
  const known = new Set(Object.keys(ConfigSchema.properties))
  for (const values of [DEV, PROD]) {
    const docs = await render(4, [values])
    const given = [...Object.keys(one<ConfigMap>(docs, 'ConfigMap').data ?? {}), ...(apiContainer(one<Deployment>(docs, 'Deployment', API)).env ?? []).map(e => e.name)]
    t.ok(given.length > 10)
    t.same(given.filter(name => !known.has(name)), [], values)
  }
})

t.test('a Sentinel setup passes REDIS_SENTINELS and the Sentinel password from the Secret, and excludes a Cluster', async t => {
  const docs = await render(4, [PROD], ['config.REDIS_SENTINELS=sentinel-0:26379\\,sentinel-1:26379'])
  t.equal(one<ConfigMap>(docs, 'ConfigMap').data?.REDIS_SENTINELS, 'sentinel-0:26379,sentinel-1:26379')
  const password = apiContainer(one<Deployment>(docs, 'Deployment', API)).env?.find(e => e.name === 'REDIS_SENTINEL_PASSWORD')
  t.same(password?.valueFrom?.secretKeyRef, { name: 'pulsewatch-env', key: 'REDIS_SENTINEL_PASSWORD', optional: true })
  const both = await runHelm(4, templateArgs([PROD], ['config.REDIS_SENTINELS=s:26379', 'config.REDIS_CLUSTER_NODES=c:6379']))
  t.not(both.code, 0)
  t.match(both.stderr, /config/)
})

t.test('the chart\'s appVersion is the package version, so the default image tag is the release built', async t => {
  const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'))
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  t.equal(chart.appVersion, pkg.version)
})

t.test('the worker\'s queue Redis URL is kept in the Secret when given, and absent otherwise', async t => {
  const given = decode(one<Secret>(await render(4, [DEV], ['secrets.queueRedisUrl=redis://queue:6379']), 'Secret').data)
  t.equal(given.QUEUE_REDIS_URL, 'redis://queue:6379')
  t.notOk('QUEUE_REDIS_URL' in decode(one<Secret>(await render(4, [DEV]), 'Secret').data))
})
