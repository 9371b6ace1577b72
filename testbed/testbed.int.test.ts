// End to end on the real parts: images built in TypeScript, pushed with skopeo to docker-registry,
// pulled over CRI by containerd daemons that resolve docker.io through hosts.toml.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from './cluster.js';
import { startContainerd } from './containerd.js';
import { createCriClient, type CriClient } from './cri-client.js';
import { upstreamHostsToml, writeHostsToml } from './hosts-toml.js';
import { buildImage, IMAGES, MEDIA_TYPES, sizedImage, type OciLayout } from './images.js';
import { liveProcessCount } from './process.js';
import { pushImage } from './push.js';
import { runtimeBinary } from './runtime.js';
import { createScratchDir } from './scratch.js';

const execFileAsync = promisify(execFile);

// This file's share of the 127.0.1.0/24 range given to the test bed's own tests.
const REGISTRY_HOST = '127.0.1.1';
const NODE_HOSTS = ['127.0.1.2', '127.0.1.3'];

let dir: string;
let cluster: Cluster;
let app: OciLayout;
let multi: OciLayout;
let big: OciLayout;
const clients: CriClient[] = [];

function cri(socket: string): CriClient {
  const client = createCriClient(socket, { timeoutMs: 60000 });
  clients.push(client);
  return client;
}

async function blobSize(contentPath: string, digest: string): Promise<number | undefined> {
  const info = await stat(join(contentPath, 'blobs', 'sha256', digest.slice('sha256:'.length))).catch(
    () => undefined,
  );
  return info?.size;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  // The 200 MiB image is cached under .testbed/cache after the first build on a machine.
  [app, multi, big] = await Promise.all([
    buildImage(IMAGES.app),
    buildImage(IMAGES.multi),
    buildImage(IMAGES.big),
  ]);
  dir = await createScratchDir('testbed-int');
  cluster = await startCluster({
    nodes: 2,
    dir,
    registryHost: REGISTRY_HOST,
    nodeHosts: NODE_HOSTS,
    upstreamFor: ['docker.io'],
  });
});

after(async () => {
  for (const client of clients) client.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('test bed, end to end', { timeout: 120000 }, () => {
  it('pushes the app image with its digests kept', async () => {
    await pushImage(app, `${cluster.registry.hostPort}/library/app:v1`);
    const res = await fetch(`${cluster.registry.url}/v2/library/app/manifests/v1`, {
      headers: { accept: MEDIA_TYPES.manifest },
    });
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), app.topDigest);
    assert.equal(res.headers.get('content-type'), MEDIA_TYPES.manifest);
  });

  it('CRI-pulls docker.io/library/app:v1 from the local registry through hosts.toml', async () => {
    const [node] = cluster.nodes;
    assert.ok(node);
    const client = cri(node.socket);
    const imageRef = await client.pullImage('docker.io/library/app:v1');
    assert.equal(imageRef, app.images[0]?.configDigest);

    const { stdout } = await node.ctr(['images', 'ls', '-q']);
    assert.deepEqual(stdout.trim().split('\n').sort(), [
      `docker.io/library/app:v1`,
      `docker.io/library/app@${app.topDigest}`,
      app.images[0]!.configDigest,
    ]);
    // discard_unpacked_layers = false: every blob stays in the content store after unpack.
    for (const blob of app.blobs)
      assert.equal(await blobSize(node.contentPath, blob.digest), blob.size, blob.digest);

    const listed = await client.listImages();
    assert.deepEqual(
      listed.map((i) => [i.id, i.repoTags, i.repoDigests]),
      [
        [
          app.images[0]!.configDigest,
          ['docker.io/library/app:v1'],
          [`docker.io/library/app@${app.topDigest}`],
        ],
      ],
    );
    const requests = await cluster.registry.requestLog();
    for (const digest of app.images[0]!.layerDigests) {
      assert.ok(
        requests.some(
          (line) =>
            line.includes(`"GET /v2/library/app/blobs/${digest}?ns=docker.io HTTP/1.1" 200`) &&
            line.includes('containerd/'),
        ),
        `no containerd GET of ${digest} in the registry log`,
      );
    }
  });

  it('CRI-pulls an index: the host platform only, the arm64 manifest referenced but absent', async () => {
    const node = cluster.nodes[1]!;
    await pushImage(multi, `${cluster.registry.hostPort}/test/multi:v1`);
    const imageRef = await cri(node.socket).pullImage(`${cluster.registry.hostPort}/test/multi:v1`);
    const [amd64, arm64] = multi.images;
    assert.equal(imageRef, amd64?.configDigest);
    const present = [multi.indexDigest!, amd64!.manifestDigest, amd64!.configDigest, ...amd64!.layerDigests];
    for (const digest of present)
      assert.notEqual(await blobSize(node.contentPath, digest), undefined, digest);
    assert.equal(await blobSize(node.contentPath, arm64!.manifestDigest), undefined);
    assert.equal(await blobSize(node.contentPath, arm64!.layerDigests[2]!), undefined);
  });

  it('pushes and CRI-pulls the 200 MiB image', async (t) => {
    const node = cluster.nodes[1]!;
    let started = Date.now();
    await pushImage(big, `${cluster.registry.hostPort}/test/big:v1`);
    t.diagnostic(`push 200 MiB: ${Date.now() - started} ms`);
    started = Date.now();
    const imageRef = await cri(node.socket).pullImage(`${cluster.registry.hostPort}/test/big:v1`);
    t.diagnostic(`CRI pull 200 MiB: ${Date.now() - started} ms`);
    assert.equal(imageRef, big.images[0]?.configDigest);
    const layer = big.blobs.find((b) => b.digest === big.images[0]!.layerDigests[0])!;
    assert.ok(layer.size > 200 * 1024 * 1024, `layer is ${layer.size} bytes`);
    assert.equal(await blobSize(node.contentPath, layer.digest), layer.size);
  });

  it('keeps images across a containerd restart, and ImageStatus/RemoveImage work', async () => {
    const node = cluster.nodes[0]!;
    const before = node.pid();
    await node.stop();
    assert.equal(node.pid(), undefined);
    assert.equal(alive(before!), false);
    await node.start();
    assert.notEqual(node.pid(), before);
    const client = cri(node.socket);
    assert.equal((await client.imageStatus('docker.io/library/app:v1'))?.id, app.images[0]!.configDigest);
    await client.removeImage('docker.io/library/app:v1');
    assert.equal(await client.imageStatus('docker.io/library/app:v1'), undefined);
    // The runtime the bed selected answers, with the version its own binary prints.
    const printed = (await execFileAsync(runtimeBinary(node.runtime, 'containerd'), ['--version'])).stdout;
    assert.deepEqual(await client.version(), {
      version: '0.1.0',
      runtimeName: 'containerd',
      runtimeVersion: printed.trim().split(/\s+/)[2],
      runtimeApiVersion: 'v1',
    });
  });

  it('serves the same data after a registry restart', async () => {
    await cluster.registry.stop();
    assert.equal(cluster.registry.pid(), undefined);
    await assert.rejects(fetch(`${cluster.registry.url}/v2/`));
    await cluster.registry.start();
    const res = await fetch(`${cluster.registry.url}/v2/test/multi/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: MEDIA_TYPES.index },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), multi.indexDigest);
  });

  it('cancels a CRI pull through its AbortSignal (a mirror that never answers hangs containerd 1.6)', async () => {
    const node = cluster.nodes[1]!;
    const silent = createServer(() => {});
    silent.listen(0, NODE_HOSTS[1]);
    await once(silent, 'listening');
    try {
      const { port } = silent.address() as AddressInfo;
      await writeHostsToml(
        node.registryConfigPath,
        'hang.test',
        upstreamHostsToml(cluster.registry.url, [{ url: `http://${NODE_HOSTS[1]}:${port}` }]),
      );
      const started = Date.now();
      await assert.rejects(
        cri(node.socket).pullImage('hang.test/library/app:v1', AbortSignal.timeout(1000)),
        {
          message: 'CRI PullImage: Cancelled on client',
        },
      );
      assert.ok(Date.now() - started < 5000);
    } finally {
      silent.close();
    }
  });

  it('pulls with the native snapshotter too', async () => {
    const node = await startContainerd({ dir, name: 'native', host: NODE_HOSTS[0]!, snapshotter: 'native' });
    try {
      const imageRef = await cri(node.socket).pullImage(`${cluster.registry.hostPort}/library/app:v1`);
      assert.equal(imageRef, app.images[0]?.configDigest);
      const { stdout } = await node.ctr(['snapshots', '--snapshotter', 'native', 'ls']);
      assert.equal(stdout.trim().split('\n').length, 1 + app.images[0]!.layerDigests.length);
    } finally {
      await node.stop();
    }
  });
});

describe('startCluster with throttling', { timeout: 60000 }, () => {
  it('pulls through a per-node proxy at no more than the link rate', async (t) => {
    const scratch = await createScratchDir('cluster-throttle');
    const bytesPerSecond = 12_500_000;
    const throttled = await startCluster({
      nodes: 1,
      dir: scratch,
      registryHost: REGISTRY_HOST,
      nodeHosts: ['127.0.1.6'],
      throttle: { bytesPerSecond, latencyMs: 10, perNode: true },
      upstreamFor: ['docker.io'],
    });
    const client = cri(throttled.nodes[0]!.socket);
    try {
      const image = await buildImage(sizedImage(10, 1));
      await pushImage(image, `${throttled.registry.hostPort}/library/sized:v1`);
      const node = throttled.nodes[0]!;
      assert.equal(throttled.proxy, undefined);
      assert.equal(throttled.proxies.length, 1);
      assert.equal(node.upstream.hostPort, throttled.proxies[0]!.hostPort);
      assert.match(node.upstream.hostPort, /^127\.0\.1\.6:\d+$/);
      const started = Date.now();
      assert.equal(await client.pullImage('docker.io/library/sized:v1'), image.images[0]!.configDigest);
      const elapsed = Date.now() - started;
      t.diagnostic(`10 MiB through 100 Mbit/s + 20 ms RTT: ${elapsed} ms`);
      assert.ok(
        throttled.proxies[0]!.bytesDown() >= image.totalSize,
        `proxy carried ${throttled.proxies[0]!.bytesDown()} bytes`,
      );
      assert.ok(
        elapsed >= (image.totalSize / bytesPerSecond) * 1000,
        `pull took ${elapsed} ms, faster than the link allows`,
      );
    } finally {
      await throttled.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});

describe('startCluster cleanup', { timeout: 60000 }, () => {
  it('stop() leaves no process running', async () => {
    const scratch = await createScratchDir('cluster-stop');
    try {
      const small = await startCluster({
        nodes: 1,
        dir: scratch,
        registryHost: REGISTRY_HOST,
        nodeHosts: ['127.0.1.4'],
      });
      const pids = [small.registry.pid()!, small.nodes[0]!.pid()!];
      assert.ok(pids.every(alive));
      await small.stop();
      await small.stop();
      assert.deepEqual(pids.map(alive), [false, false]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('stops what it started when a node fails half-way', async () => {
    const scratch = await createScratchDir('cluster-fail');
    const running = liveProcessCount();
    try {
      // A scratch path this long makes the node's socket path too long for a unix socket.
      const deep = join(scratch, 'x'.repeat(90));
      await assert.rejects(
        startCluster({ nodes: 1, dir: deep, registryHost: REGISTRY_HOST, nodeHosts: ['127.0.1.5'] }),
        (err: Error) => {
          assert.match(
            err.message,
            /^startContainerd: socket path .* is longer than 107 bytes; use a shorter dir$/,
          );
          return true;
        },
      );
      assert.equal(liveProcessCount(), running);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
