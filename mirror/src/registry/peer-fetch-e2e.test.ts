// The whole mirror path between two nodes, sockets included: node B's containerd asks B's registry
// API; B's store misses; B's PeerSource finds node A through the (in-memory) router and fetches
// from A's registry API, which serves its store because the request carries the loop guard.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../http/app.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { MemoryNetwork } from '../../test-support/memory-router.js';
import { MemoryStore, type MemoryImage } from '../../test-support/memory-store.js';
import { createPeerSource } from './peer-fetch.js';
import { createRegistryService } from './registry-service.js';
import { createTagPolicy } from './tag-policies.js';

async function listen(app: FastifyInstance, host: string): Promise<string> {
  await app.listen({ host, port: 0 });
  const address = app.server.address() as { port: number };
  return `http://${host}:${address.port}`;
}

describe('mirror path between two nodes', () => {
  const network = new MemoryNetwork();
  const storeA = new MemoryStore();
  const storeB = new MemoryStore();
  const layer = randomBytes(2 * 1024 * 1024 + 5);
  let image: MemoryImage;
  let appA: FastifyInstance;
  let appB: FastifyInstance;
  let urlB: string;
  let metricsB: Metrics;

  before(async () => {
    image = storeA.addOciImage('docker.io/library/app:v1', { layers: [layer] });
    appA = buildApp({ service: createRegistryService({ store: storeA }) });
    const urlA = await listen(appA, '127.0.6.60');
    const routerA = network.join({ id: 'a', registryUrl: urlA });
    await routerA.advertise([
      image.name,
      image.manifest.digest,
      image.config.digest,
      image.layers[0]!.digest,
    ]);

    metricsB = createMetrics(new Registry(), { defaultMetrics: false });
    // B's own registry URL is known only after listen; the router needs it merely to exclude itself.
    const routerB = network.join({ id: 'b', registryUrl: 'http://127.0.6.61' });
    const peers = createPeerSource({ router: routerB, metrics: metricsB });
    // The upstream is never reachable here, so the default policy lets the mirror resolve tags.
    const tagPolicy = createTagPolicy({ probe: { reachable: async () => false } }, {});
    appB = buildApp({
      service: createRegistryService({ store: storeB, peers, tagPolicy }),
      metrics: metricsB,
    });
    urlB = await listen(appB, '127.0.6.61');
  });

  after(async () => {
    await appA?.close();
    await appB?.close();
  });

  it('resolves the tag through the peer, as containerd asks for it', async () => {
    const res = await fetch(`${urlB}/v2/library/app/manifests/v1?ns=docker.io`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.manifest.digest);
    assert.equal(res.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(res.headers.get('content-length'), String(image.manifestBytes.length));
  });

  it('serves the manifest by digest from the peer', async () => {
    const res = await fetch(`${urlB}/v2/library/app/manifests/${image.manifest.digest}?ns=docker.io`);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifestBytes));
  });

  it('serves the layer from the peer, whole and by range', async () => {
    const digest = image.layers[0]!.digest;
    const whole = await fetch(`${urlB}/v2/library/app/blobs/${digest}?ns=docker.io`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-length'), String(layer.length));
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(layer));

    const part = await fetch(`${urlB}/v2/library/app/blobs/${digest}?ns=docker.io`, {
      headers: { Range: 'bytes=1000-1999999' },
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999999/${layer.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(layer.subarray(1000, 2_000_000)));

    const head = await fetch(`${urlB}/v2/library/app/blobs/${digest}?ns=docker.io`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(layer.length));
    assert.equal(await metricsB.peerErrors.get().then((m) => m.values.length), 0);
    // B's store is empty: every byte came through the peer source (whole layer + the range).
    const fetched = (await metricsB.peerFetchedBytes.get()).values[0]?.value ?? 0;
    assert.ok(fetched >= layer.length + 1_999_000, `fetched ${fetched} bytes from peers`);
  });

  it('answers 404 quickly for content no node holds', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const began = performance.now();
    const res = await fetch(`${urlB}/v2/library/app/blobs/${missing}?ns=docker.io`);
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    assert.ok(performance.now() - began < 1_000);
  });
});
