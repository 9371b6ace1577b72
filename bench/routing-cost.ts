// Measures what docs/routing.md reports: bytes on the wire per 1000 advertised keys, index
// memory per 10 000 keys, CPU time per 1000 keys, lookup latency and an idle node's memory.
// Run: node --expose-gc --import tsx bench/routing-cost.ts [nodes=20]
// Real HTTP between real routers on 127.0.5.x, all in this one process.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { createIndexStore } from '../mirror/src/routing/index-store.js';
import { hashMembers, rankOwners } from '../mirror/src/routing/rendezvous.js';
import { startP2PCluster } from '../mirror/test-support/p2p-test-cluster.js';
import { collect } from '../mirror/test-support/router-conformance.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx');
const mode = process.argv[2] ?? '20';
if (mode === 'idle' || mode === 'baseline') {
  // The resident memory of one idle node (router + peer server) against a bare process.
  if (mode === 'idle') {
    const one = await startP2PCluster({ size: 1, firstHost: 99 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    gc?.();
    console.log(`idle node RSS MiB: ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)}`);
    await one.close();
  } else {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    gc?.();
    console.log(`bare process RSS MiB: ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)}`);
  }
  process.exit(0);
}
const nodes = mode === 'memory' ? 0 : Number(mode);
const digest = (seed: string): string => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
const tag = (i: number): string => `docker.io/library/application-${i}:v1.2.${i}`;
const report: Record<string, string | number> = { nodes, loadavg1m: loadavg()[0]!.toFixed(1) };

// --- index memory per 10 000 keys ---------------------------------------------------------------
// Each layout is measured in a fresh process (heap deltas in a busy heap are noisy).
const layouts = ['digest-1', 'digest-3', 'tag-1', 'naive-digest-1'] as const;
if (mode === 'memory') {
  // The marginal cost of the second 10 000 keys: excludes compiled code and other fixed costs.
  const layout = process.argv[3] as (typeof layouts)[number];
  const keys = layout.includes('tag')
    ? Array.from({ length: 20_000 }, (_, i) => tag(i))
    : Array.from({ length: 20_000 }, (_, i) => digest(`mem${i}`));
  const holder = (i: number) => ({ id: `10.0.0.${i}:5001`, registryUrl: `http://10.0.0.${i}:5000` });
  const halves = [JSON.stringify(keys.slice(0, 10_000)), JSON.stringify(keys.slice(10_000))];
  const naive = new Map<string, { id: string; registryUrl: string; expiresAt: number }[]>();
  const index = createIndexStore();
  const fill = (half: string): void => {
    // Fresh strings, as JSON.parse hands them to the server: the stored key copies count.
    for (let h = 0; h < Number(layout.at(-1)); h++) {
      const batch = JSON.parse(half) as string[];
      if (layout === 'naive-digest-1') {
        // The obvious layout, for comparison: hex string keys, one object per holder.
        for (const key of batch) naive.set(key, [{ ...holder(h), expiresAt: Date.now() }]);
      } else {
        index.add(holder(h), batch, 300);
      }
    }
  };
  fill(halves[0]!);
  gc();
  gc();
  const middle = process.memoryUsage().heapUsed;
  fill(halves[1]!);
  gc();
  gc();
  console.log(process.memoryUsage().heapUsed - middle, naive.size + index.keys().length > 0 ? '' : '-');
  process.exit(0);
}
for (const layout of layouts) {
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, 'memory', layout], {
    encoding: 'utf8',
  });
  report[`heap bytes per 10k keys, ${layout}`] = Number.parseInt(child.stdout, 10);
}

// --- ranking cost (a membership change re-ranks every advertised key) ---------------------------
const keys10k = Array.from({ length: 10_000 }, (_, i) => digest(`rank${i}`));
const members100 = hashMembers(Array.from({ length: 100 }, (_, i) => `10.1.0.${i}:5001`));
let cpu = process.cpuUsage();
for (const key of keys10k) rankOwners(key, members100, 3);
cpu = process.cpuUsage(cpu);
report['CPU ms to rank 10k keys over 100 members'] = ((cpu.user + cpu.system) / 1000).toFixed(1);

// --- a real cluster over HTTP -------------------------------------------------------------------
const cluster = await startP2PCluster({
  size: nodes,
  firstHost: 100,
  router: { ttlSeconds: 300, refreshIntervalMs: 120_000, tickMs: 1000, lookupTimeoutMs: 1000 },
});
// Every socket that carried a peer request ('connection' misses sockets a pool opened earlier).
const sockets = new Set<Socket>();
for (const node of cluster.nodes)
  node.app.server.on('request', (request: IncomingMessage) => sockets.add(request.socket));
const wire = (): number => [...sockets].reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0);
const remoteCopies = (sender: number): number =>
  cluster.nodes.reduce((sum, n, i) => (i === sender ? sum : sum + n.router.index.keys().length), 0);

async function advertiseCost(label: string, keys: string[]): Promise<void> {
  const sender = cluster.nodes[1]!.router;
  const copiesBefore = remoteCopies(1);
  const bytesBefore = wire();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await sender.advertise(keys);
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpuBefore);
  report[`${label}: wire bytes per 1000 keys (requests + answers, all owners)`] = Math.round(
    ((wire() - bytesBefore) * 1000) / keys.length,
  );
  report[`${label}: wire bytes per key and remote owner`] = Math.round(
    (wire() - bytesBefore) / (remoteCopies(1) - copiesBefore),
  );
  report[`${label}: CPU ms per 1000 keys (sender + every owner)`] = (
    ((used.user + used.system) / 1000) *
    (1000 / keys.length)
  ).toFixed(1);
  report[`${label}: wall ms for ${keys.length} keys`] = wall.toFixed(0);
}
// Warm up connections and JIT first, so the numbers are steady-state.
await cluster.nodes[1]!.router.advertise(Array.from({ length: 500 }, (_, i) => digest(`warm${i}`)));
await advertiseCost(
  'digest keys',
  Array.from({ length: 5000 }, (_, i) => digest(`adv${i}`)),
);
await advertiseCost(
  'tag keys',
  Array.from({ length: 5000 }, (_, i) => tag(100_000 + i)),
);

const lookupKeys = Array.from({ length: 5000 }, (_, i) => digest(`adv${i}`));
const asker = cluster.nodes[2]!.router;
for (const key of lookupKeys.slice(0, 100)) await collect(asker, key, 1, 2000);
const durations: number[] = [];
const bytesBefore = wire();
const cpuBefore = process.cpuUsage();
let found = 0;
for (const key of lookupKeys.slice(100, 1100)) {
  const started = performance.now();
  for await (const _holder of asker.lookup(key, { signal: AbortSignal.timeout(2000), count: 1 })) {
    found++;
    break;
  }
  durations.push(performance.now() - started);
}
const lookupCpu = process.cpuUsage(cpuBefore);
durations.sort((a, b) => a - b);
report['lookups found (of 1000)'] = found;
report['lookup ms p50'] = durations[500]!.toFixed(2);
report['lookup ms p90'] = durations[900]!.toFixed(2);
report['lookup ms p99'] = durations[990]!.toFixed(2);
report['lookup wire bytes each (≤ R requests)'] = Math.round((wire() - bytesBefore) / 1000);
report['lookup CPU ms each (asker + owners)'] = ((lookupCpu.user + lookupCpu.system) / 1000 / 1000).toFixed(
  2,
);
await cluster.close();
gc();
report['process RSS MiB at the end (all nodes in one process)'] = (
  process.memoryUsage().rss /
  2 ** 20
).toFixed(0);
for (const [name, value] of Object.entries(report)) console.log(`${name}: ${value}`);
