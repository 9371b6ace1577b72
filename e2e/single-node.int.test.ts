// One Peili daemon beside one real containerd that CRI-pulled three images, checked with clients
// that share no code with Peili: skopeo copies and inspects through it byte for byte, plain fetch
// checks ranges and headers, and a second containerd (hosts.toml written by `peili configure`)
// pulls through it, falling back to the upstream for what the mirror lacks.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  MEDIA_TYPES,
  pushImage,
  sizedImage,
  type OciLayout,
} from '../testbed/index.js';
import { runPeili, startPeiliCluster, sumMetric, type PeiliCluster } from './peili-cluster.js';

const execFileAsync = promisify(execFile);

let dir: string;
let pc: PeiliCluster;
let app: OciLayout;
let multi: OciLayout;
let big: OciLayout;
/** `host:port` of the daemon (for skopeo) and its base URL. */
let mirrorHostPort: string;
let mirror: string;
let ns: string;

before(async () => {
  dir = await createScratchDir('e2e-single');
  // Node 2 gets no daemon of its own: its hosts.toml is pointed at node 1's daemon below.
  pc = await startPeiliCluster({
    nodes: 2,
    dir,
    registryHost: '127.0.11.1',
    nodeHosts: ['127.0.11.2', '127.0.11.3'],
    deferred: [1],
    // skopeo sends no `ns`; the daemon answers a tag only when told to resolve tags always.
    registryArgs: ['--resolve-tags=always'],
  });
  [app, multi, big] = await Promise.all([
    buildImage(IMAGES.app),
    buildImage(IMAGES.multi),
    buildImage(IMAGES.big),
  ]);
  ns = pc.upstreamHost;
  await pushImage(app, `${ns}/test/app:v1`);
  await pushImage(multi, `${ns}/test/multi:v1`);
  await pushImage(big, `${ns}/test/big:v1`);
  const cri = createCriClient(pc.nodes[0]!.node.socket);
  try {
    assert.equal(await cri.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
    assert.equal(await cri.pullImage(`${ns}/test/multi:v1`), multi.images[0]!.configDigest);
    assert.equal(await cri.pullImage(`${ns}/test/big:v1`), big.images[0]!.configDigest);
  } finally {
    cri.close();
  }
  mirror = pc.nodes[0]!.mirrorUrl;
  mirrorHostPort = new URL(mirror).host;
});

after(async () => {
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blobPath(layout: OciLayout, digest: string): string {
  return join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function skopeo(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('skopeo', args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`, {
      cause: error,
    });
  }
}

for (const name of ['app', 'multi'] as const) {
  test(`skopeo copies test/${name}:v1 from the daemon byte for byte (manifest, config, every layer)`, async () => {
    const layout = name === 'app' ? app : multi;
    // From an index skopeo copies the host's platform (linux/amd64): the first one built.
    const image = layout.images[0]!;
    const out = join(dir, `skopeo-${name}`);
    await skopeo([
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${mirrorHostPort}/test/${name}:v1`,
      `oci:${out}:v1`,
    ]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.digest),
      [image.manifestDigest],
    );
    const copied = (await readdir(join(out, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`).sort();
    assert.deepEqual(copied, [image.manifestDigest, image.configDigest, ...image.layerDigests].sort());
    for (const digest of copied) {
      const [got, want] = await Promise.all([
        readFile(join(out, 'blobs', 'sha256', digest.slice('sha256:'.length))),
        readFile(blobPath(layout, digest)),
      ]);
      assert.equal(sha256(got), digest, `copied blob ${digest} hashes to its digest`);
      assert.ok(got.equals(want), `copied blob ${digest} equals the pushed one`);
    }
  });
}

test('skopeo inspect --raw of the multi-arch index returns the pushed index bytes', async () => {
  const raw = await skopeo([
    'inspect',
    '--raw',
    '--tls-verify=false',
    `docker://${mirrorHostPort}/test/multi:v1`,
  ]);
  const pushed = await readFile(blobPath(multi, multi.indexDigest!), 'utf8');
  assert.equal(raw, pushed);
  const parsed = JSON.parse(raw) as { mediaType: string; manifests: { digest: string }[] };
  assert.equal(parsed.mediaType, MEDIA_TYPES.index);
  assert.deepEqual(
    parsed.manifests.map((m) => m.digest),
    multi.manifestDigests,
  );
});

test('range requests: 206 with exact bytes and Content-Range, 416 beyond the end', async () => {
  const layer = app.images[0]!.layerDigests[0]!;
  const bytes = await readFile(blobPath(app, layer));
  const url = `${mirror}/v2/test/app/blobs/${layer}?ns=${encodeURIComponent(ns)}`;
  const cases = [
    { range: 'bytes=0-0', start: 0, end: 0 },
    { range: 'bytes=10-4105', start: 10, end: 4105 },
    { range: `bytes=${bytes.length - 100}-`, start: bytes.length - 100, end: bytes.length - 1 },
    { range: 'bytes=-50', start: bytes.length - 50, end: bytes.length - 1 },
  ];
  for (const c of cases) {
    const response = await fetch(url, { headers: { Range: c.range } });
    assert.equal(response.status, 206, c.range);
    assert.equal(response.headers.get('content-range'), `bytes ${c.start}-${c.end}/${bytes.length}`, c.range);
    assert.equal(response.headers.get('content-length'), String(c.end - c.start + 1), c.range);
    const body = Buffer.from(await response.arrayBuffer());
    assert.ok(body.equals(bytes.subarray(c.start, c.end + 1)), `${c.range}: exact bytes`);
  }
  const beyond = await fetch(url, { headers: { Range: `bytes=${bytes.length}-` } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), `bytes */${bytes.length}`);
  await beyond.body?.cancel();
});

test('HEAD answers carry the real media type, the digest and the length', async () => {
  const q = `?ns=${encodeURIComponent(ns)}`;
  const manifest = app.blobs.find((b) => b.digest === app.manifestDigests[0])!;
  const index = multi.blobs.find((b) => b.digest === multi.indexDigest)!;
  const config = app.blobs.find((b) => b.digest === app.images[0]!.configDigest)!;
  const layer = big.blobs.find((b) => b.digest === big.images[0]!.layerDigests[0])!;
  const cases = [
    { path: `/v2/test/app/manifests/${manifest.digest}`, blob: manifest, type: MEDIA_TYPES.manifest },
    { path: `/v2/test/app/manifests/v1`, blob: manifest, type: MEDIA_TYPES.manifest },
    { path: `/v2/test/multi/manifests/${index.digest}`, blob: index, type: MEDIA_TYPES.index },
    { path: `/v2/test/app/blobs/${config.digest}`, blob: config, type: undefined },
    { path: `/v2/test/big/blobs/${layer.digest}`, blob: layer, type: undefined },
  ];
  for (const c of cases) {
    const response = await fetch(`${mirror}${c.path}${q}`, { method: 'HEAD' });
    assert.equal(response.status, 200, c.path);
    assert.equal(response.headers.get('docker-content-digest'), c.blob.digest, c.path);
    assert.equal(response.headers.get('content-length'), String(c.blob.size), c.path);
    if (c.type !== undefined) assert.equal(response.headers.get('content-type'), c.type, c.path);
  }
  const blobHead = await fetch(`${mirror}/v2/test/big/blobs/${layer.digest}${q}`, { method: 'HEAD' });
  assert.equal(blobHead.headers.get('accept-ranges'), 'bytes');
});

/** Streams `url` to the end, hashing it; returns the digest, size and MB/s. */
async function timedDownload(url: string): Promise<{ digest: string; size: number; mbPerSecond: number }> {
  const started = performance.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  assert.equal(response.status, 200, url);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of response.body!) {
    hash.update(chunk as Uint8Array);
    size += (chunk as Uint8Array).byteLength;
  }
  const seconds = (performance.now() - started) / 1000;
  return { digest: `sha256:${hash.digest('hex')}`, size, mbPerSecond: size / 1e6 / seconds };
}

test('the 200 MiB blob streams whole from the daemon; throughput vs the registry (printed)', async () => {
  const layer = big.blobs.find((b) => b.digest === big.images[0]!.layerDigests[0])!;
  const path = `/v2/test/big/blobs/${layer.digest}`;
  const viaDaemon = await timedDownload(`${mirror}${path}?ns=${encodeURIComponent(ns)}`);
  const direct = await timedDownload(`${pc.cluster.registry.url}${path}`);
  assert.deepEqual(
    { digest: viaDaemon.digest, size: viaDaemon.size },
    { digest: layer.digest, size: layer.size },
  );
  assert.deepEqual({ digest: direct.digest, size: direct.size }, { digest: layer.digest, size: layer.size });
  console.log(
    `200 MiB blob: daemon ${viaDaemon.mbPerSecond.toFixed(0)} MB/s, docker-registry ${direct.mbPerSecond.toFixed(0)} MB/s`,
  );
});

test('a second containerd pulls through the daemon, and falls back upstream for what it lacks', async () => {
  const [node1, node2] = pc.nodes as [PeiliCluster['nodes'][0], PeiliCluster['nodes'][0]];
  // Point node 2's hosts.toml at node 1's daemon, written by the real `peili configure`.
  await runPeili(
    [
      'configure',
      `--config-path=${node2.node.registryConfigPath}`,
      `--mirror-targets=${node1.mirrorUrl}`,
      `--mirrored-registries=${ns}`,
      `--containerd-sock=${node2.node.socket}`,
    ],
    join(dir, 'configure-node2.log'),
  );
  const hostsToml = await readFile(join(node2.node.registryConfigPath, ns, 'hosts.toml'), 'utf8');
  assert.match(hostsToml, new RegExp(`\\[host\\.['"]${node1.mirrorUrl.replace(/\./g, '\\.')}['"]\\]`));

  const extra = await buildImage(sizedImage(1, 2, { tag: 'v1' }));
  await pushImage(extra, `${ns}/test/extra:v1`);
  const logBefore = (await pc.cluster.registry.requestLog()).length;
  const hitsBefore = sumMetric(await node1.metrics(), 'peili_mirror_requests_total', { outcome: 'hit' });

  const cri = createCriClient(node2.node.socket);
  try {
    assert.equal(await cri.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
    const afterApp = (await pc.cluster.registry.requestLog()).slice(logBefore);
    assert.deepEqual(
      afterApp.filter((line) => line.includes('/v2/test/app/')),
      [],
      'the app pull reached the upstream',
    );
    // HEAD tag, manifest, config and three layers: all answered by the daemon.
    const hits =
      sumMetric(await node1.metrics(), 'peili_mirror_requests_total', { outcome: 'hit' }) - hitsBefore;
    assert.ok(hits >= 6, `daemon hits for the app pull: ${hits}`);

    assert.equal(await cri.pullImage(`${ns}/test/extra:v1`), extra.images[0]!.configDigest);
  } finally {
    cri.close();
  }
  const log = (await pc.cluster.registry.requestLog()).slice(logBefore);
  for (const digest of [extra.images[0]!.configDigest, ...extra.images[0]!.layerDigests]) {
    assert.ok(
      log.some((line) => line.includes(`"GET /v2/test/extra/blobs/${digest}`)),
      `upstream served ${digest}; log:\n${log.join('\n')}`,
    );
  }
  const held = await node2.node.ctr(['content', 'ls', '-q']);
  for (const digest of extra.images[0]!.layerDigests)
    assert.ok(held.stdout.includes(digest), `node 2 holds ${digest}`);
});
