// `npm run demo`: three real containerd nodes with Peili pull a ~100 MB, 4-layer image from a
// registry that behaves like a remote one (throttled to 100 Mbit/s with 20 ms round trips):
// node 1 from the upstream, nodes 2 and 3 from their peers, then node 2 again with the upstream
// stopped. Prints a table and leaves nothing running or changed.
import { rm } from 'node:fs/promises';
import {
  startPeiliCluster,
  sumMetric,
  waitUntilServed,
  type PeiliCluster,
  type PeiliNode,
} from '../e2e/peili-cluster.js';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  pushImage,
  sizedImage,
  type OciLayout,
} from '../testbed/index.js';

/** One row of the demo's table. */
interface Row {
  step: string;
  node: string;
  seconds: number;
  hits: number;
  misses: number;
  fromPeersMiB: number;
  upstreamBlobGets: number;
}

const MiB = 1024 * 1024;

async function counters(node: PeiliNode): Promise<{ hits: number; misses: number; peerBytes: number }> {
  const samples = await node.metrics();
  return {
    hits: sumMetric(samples, 'peili_mirror_requests_total', { outcome: 'hit' }),
    misses: sumMetric(samples, 'peili_mirror_requests_total', { outcome: 'miss' }),
    peerBytes: sumMetric(samples, 'peili_peer_fetched_bytes_total'),
  };
}

async function upstreamBlobGets(pc: PeiliCluster): Promise<number> {
  const lines = await pc.cluster.registry.requestLog();
  return lines.filter((line) => /"GET \/v2\/[^ ]+\/blobs\//.test(line)).length;
}

async function pull(
  pc: PeiliCluster,
  index: number,
  ref: string,
  step: string,
  upstreamUp: boolean,
): Promise<Row> {
  const node = pc.nodes[index]!;
  const before = await counters(node);
  const gets = upstreamUp ? await upstreamBlobGets(pc) : 0;
  const cri = createCriClient(node.node.socket);
  const started = process.hrtime.bigint();
  try {
    await cri.pullImage(ref);
  } finally {
    cri.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = await counters(node);
  return {
    step,
    node: node.node.name,
    seconds,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    fromPeersMiB: (after.peerBytes - before.peerBytes) / MiB,
    upstreamBlobGets: upstreamUp ? (await upstreamBlobGets(pc)) - gets : 0,
  };
}

/** Removes every image record of `layout` from a node and lets containerd collect its content. */
async function forget(node: PeiliNode, layout: OciLayout): Promise<void> {
  const { stdout } = await node.node.ctr(['images', 'ls', '-q']);
  const names = stdout.split('\n').filter((name) => name !== '');
  const config = layout.images[0]!.configDigest;
  const ours = names.filter((name) => name.includes('/demo/app') || name === config);
  await node.node.ctr(['images', 'rm', '--sync', ...ours]);
}

function printTable(rows: readonly Row[]): void {
  const header = ['step', 'node', 'pull time', 'mirror hits', 'misses', 'from peers', 'blob GETs upstream'];
  const body = rows.map((row) => [
    row.step,
    row.node,
    `${row.seconds.toFixed(2)} s`,
    String(row.hits),
    String(row.misses),
    `${row.fromPeersMiB.toFixed(1)} MiB`,
    row.step.includes('stopped') ? '(registry down)' : String(row.upstreamBlobGets),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const cells of body) console.log(line(cells));
}

async function main(): Promise<void> {
  const dir = await createScratchDir('demo');
  let pc: PeiliCluster | undefined;
  try {
    console.log('building a 100 MiB, 4-layer image (cached after the first run)…');
    const image = await buildImage(sizedImage(100, 4));
    console.log('starting a registry throttled to 100 Mbit/s with 20 ms round trips, and 3 nodes…');
    pc = await startPeiliCluster({
      nodes: 3,
      dir,
      registryHost: '127.0.0.1',
      nodeHosts: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
      logLevel: 'info',
      // One shared 100 Mbit/s link for all connections, like a remote registry's.
      throttle: { bytesPerSecond: 12_500_000, latencyMs: 10, limitScope: 'proxy' },
    });
    const ref = `${pc.upstreamHost}/demo/app:v1`;
    await pushImage(image, ref);
    console.log(`pulling ${ref} with CRI PullImage on each node…\n`);

    const rows: Row[] = [];
    rows.push(await pull(pc, 0, ref, '1. first pull (upstream)', true));
    // Wait until node 1's advertiser has announced what containerd just stored.
    await waitUntilServed(pc.nodes[1]!, {
      ns: pc.upstreamHost,
      repository: 'demo/app',
      digests: image.images[0]!.layerDigests,
    });
    rows.push(await pull(pc, 1, ref, '2. second node (peers)', true));
    rows.push(await pull(pc, 2, ref, '3. third node (peers)', true));
    await forget(pc.nodes[1]!, image);
    await pc.cluster.registry.stop();
    rows.push(await pull(pc, 1, ref, '4. upstream stopped (peers)', false));
    printTable(rows);
    const speedup = rows[0]!.seconds / Math.max(rows[1]!.seconds, rows[2]!.seconds);
    console.log(`\nnodes 2 and 3 pulled ${speedup.toFixed(1)}x faster than node 1 did from the upstream.`);
  } finally {
    await pc?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('demo failed:', error);
    process.exit(1);
  },
);
