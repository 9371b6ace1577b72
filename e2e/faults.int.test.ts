// Faults on the real test bed: two containerd nodes with Peili daemons and a real registry.
// In order: a peer whose on-disk blob is corrupt (its bytes never complete a download elsewhere),
// a blob truncated on disk while it is served, containerd's socket and content directory missing
// when the daemon starts (it runs, is not ready, answers fast, becomes ready once containerd
// appears), a blob removed by containerd while it streams over gRPC, and a containerd restart.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  REPO_ROOT,
  sizedImage,
  startProcess,
  waitFor,
  type ManagedProcess,
  type OciLayout,
} from '../testbed/index.js';
import {
  PEILI_PORTS,
  startPeiliCluster,
  sumMetric,
  waitUntilServed,
  type PeiliCluster,
} from './peili-cluster.js';
import { daemonNode } from '../testbed/daemon-node.js';

const CLI = join(REPO_ROOT, 'mirror', 'src', 'cli.ts');
const MiB = 1024 * 1024;

let dir: string;
let pc: PeiliCluster;
let ns: string;
let app: OciLayout;
let big: OciLayout;
let custom: ManagedProcess | undefined;

before(async () => {
  dir = await createScratchDir('e2e-faults');
  pc = await startPeiliCluster({
    nodes: 2,
    dir,
    registryHost: '127.0.41.1',
    nodeHosts: ['127.0.41.2', '127.0.41.3'],
  });
  ns = pc.upstreamHost;
  [app, big] = await Promise.all([buildImage(IMAGES.app), buildImage(sizedImage(8, 1, { tag: 'faults' }))]);
  await pushImage(app, `${ns}/test/app:v1`);
  await pushImage(big, `${ns}/test/big:v1`);
});

after(async () => {
  await custom?.stop({ timeoutMs: 10_000 });
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blobUrl(mirror: string, repository: string, digest: string): string {
  return `${mirror}/v2/${repository}/blobs/${digest}?ns=${encodeURIComponent(ns)}`;
}

/** What a download ended as: complete with these bytes, or cut part-way. */
type Download = { complete: true; bytes: Buffer } | { complete: false; received: number; error: string };

/** GETs `url`; calls `midway` after the first chunk; never hangs (20 s budget). */
async function download(
  url: string,
  midway?: () => Promise<void>,
): Promise<{ status: number; result: Download }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  const chunks: Buffer[] = [];
  try {
    const reader = response.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
      if (chunks.length === 1 && midway) await midway();
    }
  } catch (error) {
    const received = chunks.reduce((n, c) => n + c.length, 0);
    return { status: response.status, result: { complete: false, received, error: String(error) } };
  }
  return { status: response.status, result: { complete: true, bytes: Buffer.concat(chunks) } };
}

/** Flips bytes in the middle of a file, keeping its size (a bit-rotted or tampered blob). */
async function corruptInPlace(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    const at = Math.floor(size / 2);
    const original = Buffer.alloc(16);
    await handle.read(original, 0, 16, at);
    await handle.write(Buffer.from(original.map((b) => b ^ 0xff)), 0, 16, at);
  } finally {
    await handle.close();
  }
}

function contentFile(contentPath: string, digest: string): string {
  return join(contentPath, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function readyz(metricsUrl: string): Promise<number | undefined> {
  const response = await fetch(`${metricsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).catch(
    () => undefined,
  );
  return response?.status;
}

test('a peer serving corrupt blob bytes never completes a download; the pull still succeeds', async () => {
  const [node1, node2] = pc.nodes as [(typeof pc.nodes)[0], (typeof pc.nodes)[0]];
  const cri1 = createCriClient(node1.node.socket);
  const cri2 = createCriClient(node2.node.socket);
  try {
    assert.equal(await cri1.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
    const layers = app.images[0]!.layerDigests;
    await waitUntilServed(node2, { ns, repository: 'test/app', digests: layers });
    // Node 1's copy of the biggest layer rots on disk; its daemon reads the file as it is.
    const layer = layers[0]!;
    await corruptInPlace(contentFile(node1.node.contentPath, layer));
    const before = sumMetric(await node2.metrics(), 'peili_peer_errors_total', { reason: 'digest' });
    const { status, result } = await download(blobUrl(node2.mirrorUrl, 'test/app', layer));
    if (result.complete) {
      // Only acceptable if what completed is the intact blob.
      assert.equal(sha256(result.bytes), layer, `status ${status}: a corrupt download completed`);
    } else {
      assert.equal(status, 200);
    }
    const after = sumMetric(await node2.metrics(), 'peili_peer_errors_total', { reason: 'digest' });
    assert.equal(after - before, 1, 'the digest mismatch is counted once');
    // containerd on node 2 pulls the image. It resumes a cut download with a Range request and
    // commits what it got, so an attempt that met the corrupt bytes fails its commit ("unexpected
    // commit digest"); the kubelet retries, and the retry must not meet that copy again.
    const attempts: string[] = [];
    for (let i = 0; i < 2 && attempts.at(-1) !== 'ok'; i++) {
      try {
        assert.equal(await cri2.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
        attempts.push('ok');
      } catch (error) {
        attempts.push(String(error));
      }
    }
    assert.equal(attempts.at(-1), 'ok', attempts.join('\n'));
    console.log(
      `pull attempts on node 2 with a corrupt peer: ${attempts.length} (${attempts.map((a) => (a === 'ok' ? 'ok' : a.slice(0, 80))).join('; ')})`,
    );
    const { stdout } = await node2.node.ctr(['content', 'ls', '-q']);
    assert.ok(stdout.split('\n').includes(layer), 'node 2 holds the layer');
  } finally {
    cri1.close();
    cri2.close();
  }
});

test('a blob truncated on disk while served (disk path) cuts the connection', async () => {
  const node1 = pc.nodes[0]!;
  const cri1 = createCriClient(node1.node.socket);
  try {
    await cri1.pullImage(`${ns}/test/big:v1`);
  } finally {
    cri1.close();
  }
  const layer = big.images[0]!.layerDigests[0]!;
  const file = contentFile(node1.node.contentPath, layer);
  const { status, result } = await download(blobUrl(node1.mirrorUrl, 'test/big', layer), () =>
    truncate(file, MiB),
  );
  assert.equal(status, 200);
  assert.equal(result.complete, false, 'a truncated blob must not complete');
  assert.ok(!result.complete && result.received < 8 * MiB, 'fewer bytes than the blob');
  // Remove the damaged content so later pulls fetch it again.
  await node1.node.ctr(['images', 'rm', `${ns}/test/big:v1`]).catch(() => undefined);
  await node1.node.ctr(['content', 'rm', layer]).catch(() => undefined);
});

test('containerd socket and content directory missing at start: runs, not ready, fast answers, then ready', async () => {
  const node2 = pc.nodes[1]!;
  await node2.stopDaemon();
  await node2.node.stop();
  const host = node2.node.host;
  const metricsUrl = node2.metricsUrl;
  custom = await startProcess(
    daemonNode().path,
    [
      '--import',
      'tsx',
      CLI,
      'registry',
      `--containerd-sock=${node2.node.socket}`,
      // Missing content directory: every read goes over containerd's gRPC Content.Read.
      `--containerd-content-path=${join(dir, 'no-such-content-dir')}`,
      `--registry-addr=${host}:${PEILI_PORTS.registry}`,
      `--router-addr=${host}:${PEILI_PORTS.router}`,
      `--metrics-addr=${host}:${PEILI_PORTS.metrics}`,
      `--advertise-host=${host}`,
      `--members=${pc.nodes.map((n) => `${n.node.host}:${PEILI_PORTS.router}`).join(',')}`,
      `--mirrored-registries=${ns}`,
      '--members-refresh=1s',
      '--log-level=debug',
    ],
    { logPath: join(dir, 'peili-custom.log'), cwd: REPO_ROOT },
  );
  const daemon = custom;
  await waitFor(async () => (await readyz(metricsUrl)) !== undefined, {
    timeoutMs: 30_000,
    intervalMs: 100,
    describe: () => 'the daemon never served /readyz without containerd',
  });
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.ok(daemon.running(), 'the daemon runs without containerd');
  assert.equal(await readyz(metricsUrl), 503);
  // A request without containerd is answered at once (containerd falls back on 503/404).
  const layer = app.images[0]!.layerDigests[1]!;
  const started = Date.now();
  const response = await fetch(blobUrl(node2.mirrorUrl, 'test/app', layer), {
    method: 'HEAD',
    signal: AbortSignal.timeout(5_000),
  });
  const elapsed = Date.now() - started;
  assert.ok([404, 503].includes(response.status), `status ${response.status}`);
  assert.ok(elapsed < 2_000, `answered after ${elapsed} ms`);

  await node2.node.start();
  await waitFor(async () => (await readyz(metricsUrl)) === 200, {
    timeoutMs: 20_000,
    intervalMs: 200,
    describe: () => 'the daemon never became ready once containerd started',
  });
});

test('a blob removed by containerd while it streams over gRPC never completes corrupt', async () => {
  const node2 = pc.nodes[1]!;
  const cri2 = createCriClient(node2.node.socket);
  try {
    assert.equal(await cri2.pullImage(`${ns}/test/big:v1`), big.images[0]!.configDigest);
  } finally {
    cri2.close();
  }
  const layer = big.images[0]!.layerDigests[0]!;
  const { status, result } = await download(blobUrl(node2.mirrorUrl, 'test/big', layer), async () => {
    await node2.node.ctr(['images', 'rm', `${ns}/test/big:v1`]);
    await node2.node.ctr(['content', 'rm', layer]);
  });
  assert.equal(status, 200);
  // containerd may keep serving an open reader; either way nothing wrong is ever completed.
  if (result.complete) assert.equal(sha256(result.bytes), layer);
  const gone = await fetch(blobUrl(node2.mirrorUrl, 'test/big', layer), {
    method: 'HEAD',
    headers: { 'x-peili-mirrored': 'true' },
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(gone.status, 404, 'the removed blob is no longer served locally');
});

test('containerd restart: not ready while it is down, fast answers, serving again after', async () => {
  const node2 = pc.nodes[1]!;
  const layer = app.images[0]!.layerDigests[1]!;
  const local = await download(blobUrl(node2.mirrorUrl, 'test/app', layer));
  assert.equal(local.status, 200);
  assert.ok(local.result.complete && sha256(local.result.bytes) === layer);
  await node2.node.stop();
  await waitFor(async () => (await readyz(node2.metricsUrl)) === 503, {
    timeoutMs: 15_000,
    intervalMs: 200,
    describe: () => 'still ready 15 s after containerd stopped',
  });
  const started = Date.now();
  const during = await fetch(blobUrl(node2.mirrorUrl, 'test/app', layer), {
    headers: { 'x-peili-mirrored': 'true' },
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(during.status, 503);
  const body = (await during.json()) as { errors: { code: string }[] };
  assert.equal(body.errors[0]?.code, 'UNAVAILABLE');
  assert.ok(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
  await node2.node.start();
  await waitFor(async () => (await readyz(node2.metricsUrl)) === 200, {
    timeoutMs: 20_000,
    intervalMs: 200,
    describe: () => 'not ready again 20 s after containerd restarted',
  });
  const again = await download(blobUrl(node2.mirrorUrl, 'test/app', layer));
  assert.ok(again.result.complete && sha256(again.result.bytes) === layer, 'served again after the restart');
  assert.ok(custom?.running());
});
