// Redis topologies of several private processes, for test/plugins/external/redis.test.ts: a Cluster, and a
// master with a replica watched by Sentinels. Each server is one of scripts/servers.ts's.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { answersPing, freePort, managed, startRedis, type LocalServer } from './servers.js'
import { waitFor } from './wait-for.js'

function redisCli (port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout
}

// A cluster forms, and sentinels find each other, within seconds.
const FORMING = { timeoutMs: 15_000, intervalMs: 100 }

/** A Redis Cluster of `masters` nodes (no replicas), created with redis-cli --cluster create. */
export async function startRedisCluster (dir: string, masters = 3): Promise<{ nodes: LocalServer[], seeds: string }> {
  const ports = await Promise.all(Array.from({ length: masters }, async () => await freePort()))
  const nodes = await Promise.all(ports.map(async (port, i) => await startRedis(join(dir, `node-${i}`), port, [
    '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'
  ])))
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  await waitFor(() => ports.every(port => redisCli(port, 'cluster', 'info').includes('cluster_state:ok')), { what: 'cluster_state:ok on every node', ...FORMING })
  return { nodes, seeds: ports.map(port => `127.0.0.1:${port}`).join(',') }
}

/** A master, one replica and three Sentinels (quorum 2) watching them as `name`; fails over in about 2 s. */
export async function startSentinelGroup (dir: string, name = 'mymaster'): Promise<{ master: LocalServer, replica: LocalServer, sentinels: LocalServer[], addresses: string }> {
  const master = await startRedis(join(dir, 'master'))
  const replica = await startRedis(join(dir, 'replica'), undefined, ['--replicaof', '127.0.0.1', String(master.port)])
  await waitFor(() => redisCli(replica.port, 'info', 'replication').includes('master_link_status:up'), { what: 'the replica in sync', ...FORMING })
  const sentinels: LocalServer[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const home = join(dir, `sentinel-${i}`)
    mkdirSync(home, { recursive: true })
    const conf = join(home, 'sentinel.conf')
    writeFileSync(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${home}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 3000`,
      `sentinel parallel-syncs ${name} 1`
    ].join('\n') + '\n')
    const sentinel = managed('redis-sentinel', `redis://127.0.0.1:${port}`, port,
      () => spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] }), async () => await answersPing(port))
    await sentinel.start()
    sentinels.push(sentinel)
  }
  // A failover needs every sentinel to know the replica and a majority of its peers.
  await waitFor(() => sentinels.every(s =>
    (redisCli(s.port, 'sentinel', 'replicas', name).match(/^name$/gm) ?? []).length === 1 &&
    (redisCli(s.port, 'sentinel', 'sentinels', name).match(/^name$/gm) ?? []).length === 2), { what: 'the sentinels to discover each other and the replica', ...FORMING })
  return { master, replica, sentinels, addresses: sentinels.map(s => `127.0.0.1:${s.port}`).join(',') }
}
