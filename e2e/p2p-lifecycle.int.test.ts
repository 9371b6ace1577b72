// The life of a Peili cluster around its content, on three real containerd nodes: a daemon that
// joins later finds what is already there; containerd restarted under a daemon; an image deleted
// on one node is withdrawn so nobody asks that node; and a peer that accepts connections and never
// answers costs a bounded delay, not a hung pull. One cluster, scenarios in order.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  sizedImage,
  waitFor,
  type OciLayout,
} from '../testbed/index.js';
import {
  PEILI_PORTS,
  startPeiliCluster,
  sumMetric,
  waitUntilServed,
  type PeiliCluster,
  type PeiliNode,
} from './peili-cluster.js';

let dir: string;
let pc: PeiliCluster;
let ns: string;
const silentServers: Server[] = [];
const silentSockets = new Set<Socket>();

before(async () => {
  dir = await createScratchDir('e2e-life');
  pc = await startPeiliCluster({
    nodes: 3,
    dir,
    registryHost: '127.0.13.1',
    nodeHosts: ['127.0.13.2', '127.0.13.3', '127.0.13.4'],
    deferred: [2],
    // This file checks what a node finds, not how fast: on a loaded 2-core machine the first
    // lookups of a daemon that just started (JIT, connections) overrun the 20 ms default and the
    // pull goes upstream. Lookup latency is measured by `npm run bench` (lookup, miss scenarios).
    registryArgs: ['--lookup-timeout=500ms'],
  });
  ns = pc.upstreamHost;
});

after(async () => {
  for (const socket of silentSockets) socket.destroy();
  await Promise.all(silentServers.map((server) => new Promise((resolve) => server.close(resolve))));
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

function node(i: number): PeiliNode {
  return pc.nodes[i]!;
}

async function metric(i: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(await node(i).metrics(), name, labels);
}

/** CRI-pulls `ref` on node `i` with a fresh client; returns the image ref (config digest) and the time taken. */
async function pull(i: number, ref: string): Promise<{ imageRef: string; ms: number }> {
  const cri = createCriClient(node(i).node.socket);
  const started = Date.now();
  try {
    return { imageRef: await cri.pullImage(ref), ms: Date.now() - started };
  } finally {
    cri.close();
  }
}

/** Registry access-log lines written while `fn` ran. */
async function upstreamRequestsDuring(fn: () => Promise<void>): Promise<string[]> {
  const before = (await pc.cluster.registry.requestLog()).length;
  await fn();
  return (await pc.cluster.registry.requestLog()).slice(before);
}

async function pushed(spec: Parameters<typeof buildImage>[0], repository: string): Promise<OciLayout> {
  const layout = await buildImage(spec);
  await pushImage(layout, `${ns}/${repository}:v1`);
  return layout;
}

test('a node that joins later finds the content already in the cluster', async () => {
  const app = await pushed(IMAGES.app, 'test/app');
  assert.equal((await pull(0, `${ns}/test/app:v1`)).imageRef, app.images[0]!.configDigest);
  await waitUntilServed(node(1), { ns, repository: 'test/app', digests: app.images[0]!.layerDigests });

  await node(2).startDaemon();
  const log = await upstreamRequestsDuring(async () => {
    assert.equal((await pull(2, `${ns}/test/app:v1`)).imageRef, app.images[0]!.configDigest);
  });
  // Only the tag went upstream (tags stay fresh while the upstream is up); the rest came from peers.
  assert.deepEqual(
    log.filter((line) => line.includes('/v2/test/app/') && !line.includes('"HEAD /v2/test/app/manifests/v1')),
    [],
  );
  assert.ok((await metric(2, 'peili_mirror_requests_total', { source: 'peer' })) >= 5);
});

test('containerd restarted under a running daemon: the daemon resubscribes and advertises new content', async () => {
  const multi = await pushed(IMAGES.multi, 'test/multi');
  const daemonPid = node(1).daemon()!.pid;
  await node(1).node.stop();
  await node(1).node.start();
  // Pulled after the restart: only the new event stream (or the resync after resubscribing) tells
  // the daemon about it.
  assert.equal((await pull(1, `${ns}/test/multi:v1`)).imageRef, multi.images[0]!.configDigest);
  assert.equal(node(1).daemon()?.pid, daemonPid, 'the same daemon process kept running');
  const amd64 = multi.images[0]!;
  await waitUntilServed(node(0), {
    ns,
    repository: 'test/multi',
    digests: [multi.topDigest, amd64.manifestDigest],
    kind: 'manifests',
  });
  await waitUntilServed(node(0), {
    ns,
    repository: 'test/multi',
    digests: [amd64.configDigest, ...amd64.layerDigests],
  });

  const servedBefore = await metric(1, 'peili_peer_served_bytes_total');
  const log = await upstreamRequestsDuring(async () => {
    assert.equal((await pull(0, `${ns}/test/multi:v1`)).imageRef, amd64.configDigest);
  });
  assert.deepEqual(
    log.filter((line) => line.includes('/v2/test/multi/blobs/')),
    [],
  );
  const served = (await metric(1, 'peili_peer_served_bytes_total')) - servedBefore;
  assert.ok(served >= amd64.layerDigests.length, `node 2 served ${served} bytes to node 1`);
});

test('an image deleted on node 1 is withdrawn: node 2 pulls it without sending node 1 anything', async () => {
  const zap = await pushed(sizedImage(1, 3, { tag: 'v1' }), 'test/zap');
  const image = zap.images[0]!;
  const digests = [image.manifestDigest, image.configDigest, ...image.layerDigests];
  assert.equal((await pull(0, `${ns}/test/zap:v1`)).imageRef, image.configDigest);
  await waitUntilServed(node(1), { ns, repository: 'test/zap', digests: image.layerDigests });
  const advertisedBefore = await metric(0, 'peili_advertised_keys', { kind: 'digest' });

  const names = (await node(0).node.ctr(['images', 'ls', '-q'])).stdout
    .split('\n')
    .filter((name) => name.includes('/test/zap') || name === image.configDigest);
  assert.equal(names.length, 3, `CRI names of the image: ${names.join(' ')}`);
  await node(0).node.ctr(['images', 'rm', '--sync', ...names]);
  for (const digest of digests)
    await node(0)
      .node.ctr(['content', 'rm', digest])
      .catch(() => undefined);
  const left = (await node(0).node.ctr(['content', 'ls', '-q'])).stdout;
  assert.deepEqual(
    digests.filter((d) => left.includes(d)),
    [],
  );
  await waitFor(
    async () =>
      (await metric(0, 'peili_advertised_keys', { kind: 'digest' })) <= advertisedBefore - digests.length,
    { timeoutMs: 20_000, intervalMs: 200, describe: () => 'node 1 never withdrew the deleted digests' },
  );

  const requestsBefore = await metric(0, 'peili_http_requests_total');
  const log = await upstreamRequestsDuring(async () => {
    assert.equal((await pull(1, `${ns}/test/zap:v1`)).imageRef, image.configDigest);
  });
  assert.equal(await metric(0, 'peili_http_requests_total'), requestsBefore, 'node 1 got registry requests');
  for (const digest of [image.configDigest, ...image.layerDigests]) {
    assert.ok(
      log.some((line) => line.includes(`"GET /v2/test/zap/blobs/${digest}`)),
      `upstream served ${digest}`,
    );
  }
});

/** Listens on `host:port`, accepts every connection and never answers (nor closes). */
async function listenSilently(host: string, port: number): Promise<void> {
  const server = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
    socket.on('error', () => undefined);
  });
  silentServers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

test('a holder that accepts connections and never answers: the pull completes within a bound', async () => {
  const hung = await pushed(sizedImage(2, 2, { tag: 'v1' }), 'test/hung');
  const image = hung.images[0]!;
  assert.equal((await pull(0, `${ns}/test/hung:v1`)).imageRef, image.configDigest);
  await waitUntilServed(node(1), { ns, repository: 'test/hung', digests: image.layerDigests });
  // Node 1's daemon dies without a word (its advertisements stay in the index), and something that
  // accepts TCP and never answers takes its registry and router addresses.
  await node(0).killDaemon();
  await listenSilently(node(0).node.host, PEILI_PORTS.registry);
  await listenSilently(node(0).node.host, PEILI_PORTS.router);

  const timeoutsBefore = await metric(1, 'peili_peer_errors_total', { reason: 'timeout' });
  let ms = 0;
  const log = await upstreamRequestsDuring(async () => {
    const result = await pull(1, `${ns}/test/hung:v1`);
    assert.equal(result.imageRef, image.configDigest);
    ms = result.ms;
  });
  console.log(`pull with a silent holder took ${ms} ms`);
  assert.ok(ms < 60_000, `the pull took ${ms} ms`);
  const timeouts = (await metric(1, 'peili_peer_errors_total', { reason: 'timeout' })) - timeoutsBefore;
  assert.ok(timeouts >= 1, 'node 2 asked the silent holder and timed out');
  for (const digest of image.layerDigests) {
    assert.ok(
      log.some((line) => line.includes(`"GET /v2/test/hung/blobs/${digest}`)),
      `upstream served ${digest}`,
    );
  }
});
