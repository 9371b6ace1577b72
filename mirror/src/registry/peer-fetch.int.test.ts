// The mirror path against a real distribution registry (docker-registry) standing in for a peer:
// its Range, Content-Length, Content-Type and Docker-Content-Digest answers are the ones peers mimic.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createScratchDir, startRegistry, type RegistryProcess } from '../../../testbed/index.js';
import { createMetrics } from '../metrics/metrics.js';
import type { LookupOptions, PeerLocation, Router } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import { createPeerSource } from './peer-fetch.js';
import { createUpstreamProbe } from './upstream-probe.js';

const sha256 = (bytes: Uint8Array): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function tableRouter(table: Record<string, PeerLocation[]>): Router {
  return {
    ready: () => true,
    async *lookup(key: string, options: LookupOptions) {
      for (const peer of (table[key] ?? []).slice(0, options.count ?? 3)) yield peer;
    },
    advertise: async () => {},
    withdraw: async () => {},
  };
}

async function upload(base: string, repository: string, bytes: Buffer): Promise<Digest> {
  const digest = sha256(bytes);
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(started.status, 202);
  const location = new URL(started.headers.get('location') ?? '', base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

describe('peer fetch against a real registry', { timeout: 60_000 }, () => {
  let dir: string;
  let registry: RegistryProcess;
  let dying: Server;
  let dyingPeer: PeerLocation;
  const layer = randomBytes(4 * 1024 * 1024 + 3);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  let manifest: Buffer;
  let manifestDigest: Digest;

  before(async () => {
    dir = await createScratchDir('peer-fetch');
    registry = await startRegistry({ dir, host: '127.0.6.40' });
    const configDigest = await upload(registry.url, 'test/app', config);
    assert.equal(await upload(registry.url, 'test/app', layer), layerDigest);
    manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: configDigest,
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: layerDigest,
            size: layer.length,
          },
        ],
      }),
    );
    manifestDigest = sha256(manifest);
    const put = await fetch(`${registry.url}/v2/test/app/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
    // A peer that sends the first MiB of the layer, then drops the connection.
    dying = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': layer.length });
      res.write(layer.subarray(0, 1024 * 1024), () => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => dying.listen(0, '127.0.6.41', resolve));
    dyingPeer = {
      id: 'dying',
      registryUrl: `http://127.0.6.41:${(dying.address() as { port: number }).port}`,
    };
  });

  after(async () => {
    dying?.closeAllConnections();
    await new Promise<void>((resolve) => (dying ? dying.close(() => resolve()) : resolve()));
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const real = (): PeerLocation => ({ id: 'registry', registryUrl: registry.url });
  // `ns` as containerd sends it for `<host:port>/test/app` images (the registry itself ignores it).
  const scope = (): { registry: string; repository: string } => ({
    registry: registry.hostPort,
    repository: 'test/app',
  });

  it('resolves a tag and fetches the manifest by digest, verified', async () => {
    const source = createPeerSource({
      router: tableRouter({ [`${registry.hostPort}/test/app:v1`]: [real()], [manifestDigest]: [real()] }),
    });
    const byTag = await source.manifest({ ...scope(), reference: 'v1' }, AbortSignal.timeout(5_000));
    assert.deepEqual(byTag, {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: manifestDigest,
      body: manifest,
      peerId: 'registry',
    });
    const byDigest = await source.manifest(
      { ...scope(), reference: manifestDigest },
      AbortSignal.timeout(5_000),
    );
    assert.equal(byDigest?.digest, manifestDigest);
  });

  it('reads the blob size with HEAD and streams the blob and a range', async () => {
    const source = createPeerSource({ router: tableRouter({ [layerDigest]: [real()] }) });
    const request = { ...scope(), digest: layerDigest };
    assert.equal(await source.blobSize(request, AbortSignal.timeout(5_000)), layer.length);
    const whole = await source.blob(request, AbortSignal.timeout(10_000));
    assert.ok(whole);
    const chunks: Buffer[] = [];
    for await (const chunk of whole.stream) chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(layer));
    const part = await source.blob(
      { ...request, range: { start: 100, end: 199_999 } },
      AbortSignal.timeout(10_000),
    );
    assert.ok(part);
    const partChunks: Buffer[] = [];
    for await (const chunk of part.stream) partChunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(partChunks).equals(layer.subarray(100, 200_000)));
  });

  it('resumes a broken transfer from the registry with a Range request', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const source = createPeerSource({ router: tableRouter({ [layerDigest]: [dyingPeer, real()] }), metrics });
    const got = await source.blob({ ...scope(), digest: layerDigest }, AbortSignal.timeout(10_000));
    assert.equal(got?.peerId, 'dying');
    const chunks: Buffer[] = [];
    for await (const chunk of got.stream) chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(layer));
    const errors = await metrics.peerErrors.get();
    assert.deepEqual(
      errors.values.map((v) => [v.labels.operation, v.labels.reason, v.value]),
      [['blob', 'broken', 1]],
    );
    assert.equal((await metrics.peerFetchedBytes.get()).values[0]?.value, layer.length);
  });

  it('probes the registry as reachable, and unreachable once it stopped', async () => {
    const probe = createUpstreamProbe({}, { cacheTtl: 0 });
    assert.equal(await probe.reachable(registry.hostPort, AbortSignal.timeout(5_000)), true);
    await registry.stop();
    try {
      assert.equal(await probe.reachable(registry.hostPort, AbortSignal.timeout(5_000)), false);
    } finally {
      await registry.start();
    }
  });
});
