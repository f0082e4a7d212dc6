import type { Deployment } from 'kubernetes-types/apps/v1.js'
import type { ConfigMap, Pod, Service } from 'kubernetes-types/core/v1.js'
import type { Ingress, NetworkPolicy, NetworkPolicyIngressRule } from 'kubernetes-types/networking/v1.js'
import t from 'tap'
import { loadConfig } from '../../config.js'
import { DEV, MAJORS, PROD, one, render, runHelm, selects, templateArgs, API, apiContainer } from './support.js'

// Who may reach the API and what reaches it: NetworkPolicy, Ingress, the metrics port and the proxies the pods trust.

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
