// Measures what docs/routing.md reports: bytes on the wire per 1000 advertised keys, index
// memory per 10 000 keys, CPU time per 1000 keys, lookup latency and an idle node's memory.
// Run: node --expose-gc --import tsx mirror/src/routing/measure-cost.ts [nodes=20]
// Real HTTP between real routers on 127.0.5.x, all in this one process.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { createIndexStore } from './index-store.js';
import { hashMembers, rankOwners } from './rendezvous.js';
import { startP2PCluster } from './p2p-test-cluster.js';
import { collect } from './router-conformance.js';

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
const nodes = Number(mode);
const digest = (seed: string): string => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
const tag = (i: number): string => `docker.io/library/application-${i}:v1.2.${i}`;
const report: Record<string, string | number> = { nodes, loadavg1m: loadavg()[0]!.toFixed(1) };

// --- index memory per 10 000 keys ---------------------------------------------------------------
// The smaller of two runs: the first can include one-time allocations (code, buffer pools).
function heapDelta(fill: () => unknown): number {
  return Math.min(heapDeltaOnce(fill), heapDeltaOnce(fill));
}
function heapDeltaOnce(fill: () => unknown): number {
  gc!();
  gc!();
  const before = process.memoryUsage().heapUsed;
  const kept = fill();
  gc!();
  gc!();
  const delta = process.memoryUsage().heapUsed - before;
  if (kept === undefined) throw new Error('unreachable');
  return delta;
}
const keys10k = Array.from({ length: 10_000 }, (_, i) => digest(`mem${i}`));
const tags10k = Array.from({ length: 10_000 }, (_, i) => tag(i));
const holder = (i: number) => ({ id: `10.0.0.${i}:5001`, registryUrl: `http://10.0.0.${i}:5000` });
for (const [name, keys, holders] of [
  ['digest keys, 1 holder', keys10k, 1],
  ['digest keys, 3 holders', keys10k, 3],
  ['tag keys, 1 holder', tags10k, 1],
] as const) {
  const bytes = heapDelta(() => {
    const index = createIndexStore();
    // Fresh strings, as JSON.parse hands them to the server: the index's own key copies count.
    for (let h = 0; h < holders; h++) index.add(holder(h), JSON.parse(JSON.stringify(keys)) as string[], 300);
    return index;
  });
  report[`index bytes per 10k ${name}`] = bytes;
}
// The naive layout, for comparison: hex string keys, one object per holder.
report['naive Map bytes per 10k digest keys, 1 holder'] = heapDelta(() => {
  const map = new Map<string, { id: string; registryUrl: string; expiresAt: number }[]>();
  const h = holder(0);
  for (const key of JSON.parse(JSON.stringify(keys10k)) as string[]) {
    map.set(key, [{ id: h.id, registryUrl: h.registryUrl, expiresAt: Date.now() }]);
  }
  return map;
});

// --- ranking cost (a membership change re-ranks every advertised key) ---------------------------
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
const sockets: Socket[] = [];
for (const node of cluster.nodes) node.app.server.on('connection', (socket: Socket) => sockets.push(socket));
const wire = (): number => sockets.reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0);

async function advertiseCost(label: string, keys: string[]): Promise<void> {
  const sender = cluster.nodes[1]!.router;
  const bytesBefore = wire();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await sender.advertise(keys);
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpuBefore);
  report[`${label}: wire bytes per 1000 keys (requests + answers, all owners)`] = Math.round(
    ((wire() - bytesBefore) * 1000) / keys.length,
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
