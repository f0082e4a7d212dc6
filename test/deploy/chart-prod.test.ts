import type { Deployment } from 'kubernetes-types/apps/v1.js'
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js'
import type { ConfigMap } from 'kubernetes-types/core/v1.js'
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js'
import t from 'tap'
import { PROD, component, one, render, selects, API, apiContainer } from './support.js'

// The production values (values-prod.yaml): what a platform team relies on.

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
