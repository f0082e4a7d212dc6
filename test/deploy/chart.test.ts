import type { Deployment } from 'kubernetes-types/apps/v1.js'
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js'
import type { ConfigMap, Container, Pod, Secret, Service } from 'kubernetes-types/core/v1.js'
import type { Ingress, NetworkPolicy, NetworkPolicyIngressRule } from 'kubernetes-types/networking/v1.js'
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigSchema, loadConfig } from '../../config.js'
import { ROOT } from '../../scripts/tools.js'
import { CHART, DEV, MAJORS, PROD, component, decode, one, render, runHelm, selects, templateArgs, type Manifest } from './support.js'

const API = 'pw-pulsewatch'
// Variables that come from the Secret rather than the ConfigMap.
const SECRET_VARIABLES = ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD']
const apiContainer = (d: Deployment): Container => d.spec?.template.spec?.containers[0] as Container

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

t.test('the prod values render no Redis, no PostgreSQL and no Secret: both are managed, secrets come from an existing Secret', async t => {
  const docs = await render(4, [PROD])
  t.same(docs.filter(d => ['redis', 'postgresql'].includes(component(d) ?? '')).map(d => d.metadata.name), [])
  t.notOk(docs.some(d => d.kind === 'Service' && d.metadata.name === 'redis'))
  t.same(docs.filter(d => d.kind === 'Secret'), [])
  const env = apiContainer(one<Deployment>(docs, 'Deployment', API)).env ?? []
  t.same(env.map(e => [e.name, e.valueFrom?.secretKeyRef?.name, e.valueFrom?.secretKeyRef?.key]), [
    ['JWT_SECRET', 'pulsewatch-env', 'JWT_SECRET'],
    ['DATABASE_URL', 'pulsewatch-env', 'DATABASE_URL'],
    ['REDIS_URL', 'pulsewatch-env', 'REDIS_URL']
  ])
})

t.test('the prod values scale 3 to 12 replicas with an HPA and keep all but one through disruptions', async t => {
  const docs = await render(4, [PROD])
  const deployment = one<Deployment>(docs, 'Deployment', API)
  t.equal(deployment.spec?.replicas, undefined, 'the HPA owns the replica count')
  t.equal(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable, 0)
  const hpa = one<HorizontalPodAutoscaler>(docs, 'HorizontalPodAutoscaler', API)
  t.same(hpa.spec?.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: API })
  t.ok((hpa.spec?.minReplicas ?? 0) >= 2)
  t.equal(hpa.spec?.metrics?.[0]?.resource?.name, 'cpu')
  const pdb = one<PodDisruptionBudget>(docs, 'PodDisruptionBudget', API)
  t.equal(pdb.spec?.maxUnavailable, 1)
  t.ok(selects(pdb.spec?.selector?.matchLabels, deployment.spec?.template.metadata?.labels))
  t.ok(apiContainer(deployment).resources?.requests?.cpu !== undefined && apiContainer(deployment).resources?.limits?.memory !== undefined)
})

t.test('the prod pods spread over zones and nodes, counting only their own ReplicaSet', async t => {
  const deployment = one<Deployment>(await render(4, [PROD]), 'Deployment', API)
  const spread = deployment.spec?.template.spec?.topologySpreadConstraints ?? []
  t.same(spread.map(c => [c.topologyKey, c.whenUnsatisfiable]), [
    ['topology.kubernetes.io/zone', 'ScheduleAnyway'],
    ['kubernetes.io/hostname', 'DoNotSchedule']
  ])
  for (const constraint of spread) {
    t.ok(selects(constraint.labelSelector?.matchLabels, deployment.spec?.template.metadata?.labels))
    t.same(constraint.matchLabelKeys, ['pod-template-hash'])
  }
})

t.test('the prod pod runs as a numeric non-root user on a read-only root with no capabilities and the runtime seccomp profile', async t => {
  const spec = one<Deployment>(await render(4, [PROD]), 'Deployment', API).spec?.template.spec
  const container = spec?.containers[0]
  t.equal(spec?.securityContext?.runAsNonRoot, true)
  t.ok(Number.isInteger(spec?.securityContext?.runAsUser) && (spec?.securityContext?.runAsUser ?? 0) > 0)
  t.equal(spec?.securityContext?.seccompProfile?.type, 'RuntimeDefault')
  t.equal(spec?.automountServiceAccountToken, false)
  t.equal(container?.securityContext?.readOnlyRootFilesystem, true)
  t.equal(container?.securityContext?.allowPrivilegeEscalation, false)
  t.same(container?.securityContext?.capabilities?.drop, ['ALL'])
  t.equal(container?.securityContext?.seccompProfile?.type, 'RuntimeDefault')
  const tmp = container?.volumeMounts?.find(m => m.mountPath === '/tmp')
  t.ok(spec?.volumes?.find(v => v.name === tmp?.name)?.emptyDir, '/tmp is an emptyDir')
})

t.test('the prod probes call /healthz and /readyz on the named port the container declares', async t => {
  const container = apiContainer(one<Deployment>(await render(4, [PROD]), 'Deployment', API))
  t.same(container.ports?.map(p => [p.name, p.containerPort]), [['http', 3000], ['metrics', 9464]])
  t.same(container.livenessProbe?.httpGet, { path: '/healthz', port: 'http' })
  t.same(container.startupProbe?.httpGet, { path: '/healthz', port: 'http' })
  t.same(container.readinessProbe?.httpGet, { path: '/readyz', port: 'http' })
})

t.test('the prod pod pauses in preStop and is given longer than its preStop pause plus the app\'s drain deadline', async t => {
  const docs = await render(4, [PROD])
  const spec = one<Deployment>(docs, 'Deployment', API).spec?.template.spec
  const command = spec?.containers[0]?.lifecycle?.preStop?.exec?.command ?? []
  t.equal(command[0], 'sleep')
  const pause = Number(command[1])
  t.ok(pause > 0, 'preStop pauses')
  const drainMs = Number(one<ConfigMap>(docs, 'ConfigMap').data?.SHUTDOWN_DELAY_MS)
  // server.ts gives close-with-grace SHUTDOWN_DELAY_MS + 10 s before it forces the exit.
  t.ok((spec?.terminationGracePeriodSeconds ?? 0) > pause + drainMs / 1000 + 10)
})

t.test('a configuration change rolls the pods through the checksum annotations, and an unchanged one does not', async t => {
  const annotations = async (set: string[] = []): Promise<Record<string, string>> =>
    one<Deployment>(await render(4, [PROD], set), 'Deployment', API).spec?.template.metadata?.annotations ?? {}
  const base = await annotations()
  t.match(base['checksum/config'], /^[0-9a-f]{64}$/)
  t.same(await annotations(), base)
  t.not((await annotations(['config.LOG_LEVEL=warn']))['checksum/config'], base['checksum/config'])
  t.not((await annotations(['secrets.existingSecret=pulsewatch-env-v2']))['checksum/secret'], base['checksum/secret'])
})

t.test('the prod NetworkPolicy admits the API port from the ingress controller and the helm test pod, /metrics from Prometheus, and lets out only DNS, PostgreSQL and Redis', async t => {
  const docs = await render(4, [PROD])
  const policy = one<NetworkPolicy>(docs, 'NetworkPolicy', API)
  const client = { 'pw-pulsewatch-client': 'true' }
  const expected: NetworkPolicyIngressRule[] = [
    {
      ports: [{ port: 'http', protocol: 'TCP' }],
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } }
        },
        { podSelector: { matchLabels: client } }
      ]
    },
    {
      // Prometheus reaches the metrics port alone, not the API.
      ports: [{ port: 'metrics', protocol: 'TCP' }],
      from: [{
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } }
      }]
    }
  ]
  t.same(policy.spec?.ingress, expected)
  t.ok(selects(client, one<Pod>(docs, 'Pod', `${API}-test-readyz`).metadata?.labels), 'the helm test pod carries the client label')
  t.same(apiContainer(one<Deployment>(docs, 'Deployment', API)).ports?.map(p => p.name), ['http', 'metrics'], 'the container declares the ports the rules name')
  t.same(policy.spec?.egress?.map(rule => rule.ports?.map(p => `${p.port}/${p.protocol}`)), [
    ['53/UDP', '53/TCP'], ['5432/TCP', '6379/TCP', '6380/TCP']
  ])
})

t.test('the dev and default NetworkPolicy leave the API port open to every caller', async t => {
  for (const values of [[], [DEV]]) {
    const policy = one<NetworkPolicy>(await render(4, values), 'NetworkPolicy', API)
    t.same(policy.spec?.ingress, [{ ports: [{ port: 'http', protocol: 'TCP' }] }], values.join() || 'defaults')
  }
})

t.test('the ingress controller and Prometheus peers take other selectors and a metrics port, and a selector set to null is left out', async t => {
  const policy = one<NetworkPolicy>(await render(4, [PROD], [
    'networkPolicy.ingressController.namespaceSelector=null',
    'networkPolicy.ingressController.podSelector.matchLabels.app\\.kubernetes\\.io/name=traefik',
    'networkPolicy.prometheus.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability',
    'networkPolicy.prometheus.port=9464'
  ]), 'NetworkPolicy', API)
  t.same(policy.spec?.ingress?.[0]?.from?.[0], { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } } })
  t.same(policy.spec?.ingress?.[1], {
    ports: [{ port: 9464, protocol: 'TCP' }],
    from: [{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } }
    }]
  })
})

t.test('metrics.port serves /metrics on a port of its own that no Service or Ingress routes to; null keeps it on http', async t => {
  const docs = await render(4, [PROD], ['ingress.enabled=true', 'ingress.hosts[0].host=api.example.com', 'ingress.hosts[0].paths[0].path=/'])
  const data = one<ConfigMap>(docs, 'ConfigMap').data
  t.equal(data?.METRICS_PORT, '9464')
  const config = loadConfig({ ...data, JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://pulsewatch@db/pulsewatch', REDIS_URL: 'rediss://redis:6380' })
  t.match(config, { PORT: 3000, METRICS_PORT: 9464 }, 'the app takes them')
  t.same(apiContainer(one<Deployment>(docs, 'Deployment', API)).ports?.find(p => p.name === 'metrics'), { name: 'metrics', containerPort: 9464, protocol: 'TCP' })
  t.same(one<Service>(docs, 'Service', API).spec?.ports?.map(p => p.targetPort), ['http'], 'the Service exposes the API port alone')
  t.same(one<Ingress>(docs, 'Ingress', API).spec?.rules?.flatMap(rule => rule.http?.paths.map(path => path.backend.service?.port) ?? []), [{ name: 'http' }], 'and so does the Ingress')

  const onHttp = await render(4, [PROD], ['metrics.port=null'])
  t.notOk('METRICS_PORT' in (one<ConfigMap>(onHttp, 'ConfigMap').data ?? {}), 'null: the app serves /metrics on PORT')
  t.same(apiContainer(one<Deployment>(onHttp, 'Deployment', API)).ports?.map(p => p.name), ['http'])
  t.same(one<NetworkPolicy>(onHttp, 'NetworkPolicy', API).spec?.ingress?.[1]?.ports, [{ port: 'http', protocol: 'TCP' }], 'and Prometheus is let in on http')
  const other = await render(4, [PROD], ['metrics.port=9100'])
  t.equal(one<ConfigMap>(other, 'ConfigMap').data?.METRICS_PORT, '9100')
  t.same(one<NetworkPolicy>(other, 'NetworkPolicy', API).spec?.ingress?.[1]?.ports, [{ port: 'metrics', protocol: 'TCP' }])
})

t.test('the prod values turn /docs off, the dev values leave it on', async t => {
  const secrets = { JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://pulsewatch@db/pulsewatch', REDIS_URL: 'rediss://redis:6380' }
  for (const [values, enabled] of [[PROD, false], [DEV, true]] as const) {
    const data = one<ConfigMap>(await render(4, [values]), 'ConfigMap').data
    t.equal(loadConfig({ ...data, ...secrets }).DOCS_ENABLED, enabled, values)
  }
})

t.test('the prod pods trust a hop count or the proxies\' CIDRs, never the client-written left-most X-Forwarded-For entry', async t => {
  const docs = await render(4, [PROD])
  const data = one<ConfigMap>(docs, 'ConfigMap').data
  t.not(data?.TRUST_PROXY, 'true')
  t.match(data?.TRUST_PROXY, /^([1-9]|1[0-6])$|^[0-9A-Fa-f.:/,]+$/, 'a hop count or a list of addresses/CIDRs')
  t.notOk(apiContainer(one<Deployment>(docs, 'Deployment', API)).env?.some(e => e.name === 'TRUST_PROXY'), 'not overridden in env')
  const secrets = { JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://pulsewatch@db/pulsewatch', REDIS_URL: 'rediss://redis:6380' }
  t.doesNotThrow(() => loadConfig({ ...data, ...secrets }), 'the app starts with the prod ConfigMap')
})

for (const major of MAJORS) {
  t.test(`helm ${major} takes TRUST_PROXY as a boolean, a hop count or a list of addresses/CIDRs, and nothing else`, async t => {
    const trustProxy = async (values: string[], set: string[]): Promise<string | undefined> => {
      const value = one<ConfigMap>(await render(major, values, set), 'ConfigMap').data?.TRUST_PROXY
      t.doesNotThrow(() => loadConfig({ TRUST_PROXY: value }), `the app takes ${value}`)
      return value
    }
    t.equal(await trustProxy([PROD], ['config.TRUST_PROXY=2']), '2')
    t.equal(await trustProxy([PROD], ['config.TRUST_PROXY=10.0.0.0/8\\,192.168.0.0/16']), '10.0.0.0/8,192.168.0.0/16')
    t.equal(await trustProxy([PROD], ['config.TRUST_PROXY=10.0.0.0/8\\,fd00::/8\\,2001:db8::1']), '10.0.0.0/8,fd00::/8,2001:db8::1')
    t.equal(await trustProxy([PROD], ['config.TRUST_PROXY=false']), 'false')
    t.equal(await trustProxy([DEV], ['config.TRUST_PROXY=true']), 'true', 'development may still trust every hop')
    for (const value of ['banana', '0', '17', '1.5', '10.0.0.0/33', '10.0.0.0/8\\,', '10.0.0.0/8\\, 192.168.0.0/16', '1::2::3']) {
      const { code, stderr } = await runHelm(major, templateArgs([DEV], [`config.TRUST_PROXY=${value}`]))
      t.not(code, 0, value)
      t.match(stderr, /TRUST_PROXY/, value)
    }
  })
}

t.test('the optional Ingress routes to the Service\'s http port, and the helm test pod asks /readyz through the Service', async t => {
  const docs = await render(4, [PROD], ['ingress.enabled=true', 'ingress.hosts[0].host=api.example.com', 'ingress.hosts[0].paths[0].path=/'])
  const rule = one<Ingress>(docs, 'Ingress', API).spec?.rules?.[0]
  t.equal(rule?.host, 'api.example.com')
  t.same(rule?.http?.paths[0]?.backend.service, { name: API, port: { name: 'http' } })
  const pod = one<Pod>(docs, 'Pod', `${API}-test-readyz`)
  t.equal(pod.metadata?.annotations?.['helm.sh/hook'], 'test')
  t.same(pod.spec?.containers[0]?.env, [{ name: 'READYZ_URL', value: `http://${API}:80/readyz` }])
})

for (const major of MAJORS) {
  t.test(`helm ${major} refuses values the schema or the templates forbid`, async t => {
    const refused = async (values: string[], set: string[], reason: RegExp): Promise<void> => {
      const { code, stderr } = await runHelm(major, templateArgs(values, set))
      t.not(code, 0, set.join(' '))
      t.match(stderr, reason, set.join(' '))
    }
    await refused([PROD], ['redis.enabled=true'], /redis[./]enabled/)
    await refused([PROD], ['postgresql.enabled=true'], /postgresql[./]enabled/)
    await refused([PROD], ['secrets.existingSecret='], /existingSecret/)
    await refused([PROD], ['secrets.existingSecret=null'], /existingSecret/)
    await refused([PROD], ['image.tag=latest'], /image[./]tag/)
    await refused([DEV], ['image.tag=latest'], /image[./]tag/)
    await refused([DEV], ['config.JWT_SECRET=in-a-configmap-it-would-leak-000000000'], /JWT_SECRET/)
    await refused([PROD], ['terminationGracePeriodSeconds=15'], /terminationGracePeriodSeconds/)
    await refused([PROD], ['config.TRUST_PROXY=true'], /TRUST_PROXY/)
    const quoted = await runHelm(major, [...templateArgs([PROD]), '--set-string', 'config.TRUST_PROXY=true'])
    t.not(quoted.code, 0, 'the string "true" too')
    t.match(quoted.stderr, /TRUST_PROXY/)
    // Without the schema (--skip-schema-validation) the templates still refuse it, and say why.
    const unchecked = await runHelm(major, [...templateArgs([PROD], ['config.TRUST_PROXY=true']), '--skip-schema-validation'])
    t.not(unchecked.code, 0)
    t.match(unchecked.stderr, /config\.TRUST_PROXY=true believes the left-most X-Forwarded-For entry/)
    await refused([PROD], ['networkPolicy.ingressController.namespaceSelector=null', 'networkPolicy.ingressController.podSelector=null'], /networkPolicy\.ingressController/)
    await refused([PROD], ['metrics.port=3000'], /metrics\.port \(3000\) must differ from containerPort/)
    await refused([PROD], ['metrics.port=0'], /metrics[./]port/)
    await refused([PROD], ['config.METRICS_PORT=9464'], /METRICS_PORT/)
    await refused([PROD], ['config.DOCS_ENABLED=maybe'], /DOCS_ENABLED/)
    // The control: the same files with a harmless change still render.
    t.equal((await runHelm(major, templateArgs([PROD], ['image.tag=0.1.1']))).code, 0)
  })
}
