import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../test-support/memory-store.js';
import { createNodeCheck, imageRegistry, type NodeCheckDeps } from './node-check.js';

const runtime = (version = '2.1.5'): NodeCheckDeps['runtime'] => ({
  containerdVersion: async () => ({ version }),
});

/** Removes an image's layer blobs, as containerd does with discard_unpacked_layers = true. */
function discardLayers(store: MemoryStore, layers: readonly { digest: `${string}:${string}` }[]): void {
  for (const l of layers) store.removeBlob(l.digest);
}

describe('node check', () => {
  it('reports a node like stock Talos: images held without their layers, no request seen', async () => {
    const store = new MemoryStore();
    const a = store.addOciImage('docker.io/library/app:v1', { layers: ['a1', 'a2'] });
    const b = store.addOciImage('ghcr.io/org/small:v1', { layers: ['b1'] });
    discardLayers(store, [...a.layers, ...b.layers]);
    const check = createNodeCheck({ store, runtime: runtime(), requestsSeen: () => 0 });
    assert.deepEqual(await check.check(), {
      mirror: 'unknown',
      layers: 'discarded',
      runtime: 'containerd 2.1.5',
      images: { checked: 2, complete: 0, withoutLayers: 2 },
      requestsSeen: 0,
      pulledSinceStart: 0,
    });
  });

  it('reports the mirror not configured once a mirrored image is pulled past it', async () => {
    const store = new MemoryStore();
    const check = createNodeCheck(
      { store, runtime: runtime(), requestsSeen: () => 0 },
      { mirroredRegistries: ['docker.io'] },
    );
    assert.equal((await check.check()).mirror, 'unknown');
    store.addOciImage('quay.io/org/other:v1', { layers: ['q'] });
    assert.equal((await check.check()).mirror, 'unknown', 'a registry that is not mirrored proves nothing');
    const app = store.addOciImage('docker.io/library/app:v1', { layers: ['a'] });
    // A CRI pull leaves repo:tag and repo@digest: still one image pulled.
    store.setImage(`docker.io/library/app@${app.manifest.digest}`, app.manifest);
    const report = await check.check();
    assert.equal(report.mirror, 'not-configured');
    assert.equal(report.pulledSinceStart, 1);
    assert.equal(report.layers, 'kept');
  });

  it('reports the mirror configured once containerd sent a request', async () => {
    const store = new MemoryStore();
    let requests = 0;
    const check = createNodeCheck({ store, runtime: runtime(), requestsSeen: () => requests });
    store.addOciImage('docker.io/library/app:v1', { layers: ['a'] });
    requests = 3;
    assert.equal((await check.check()).mirror, 'configured');
  });

  it('lets images pulled since start decide: old discarded images do not hide a fixed node', async () => {
    const store = new MemoryStore();
    const old = store.addOciImage('docker.io/library/old:v1', { layers: ['o1', 'o2'] });
    discardLayers(store, old.layers);
    const check = createNodeCheck({ store, runtime: runtime(), requestsSeen: () => 1 });
    assert.equal((await check.check()).layers, 'discarded');
    store.addOciImage('docker.io/library/new:v1', { layers: ['n1'] });
    assert.equal((await check.check()).layers, 'kept');
    // ...and the other way: a node that starts discarding again is reported at once.
    const worse = store.addOciImage('docker.io/library/worse:v1', { layers: ['w1'] });
    discardLayers(store, worse.layers);
    const report = await check.check();
    assert.equal(report.layers, 'kept', 'one image pulled since start still has its layers');
  });

  it('reads the platform manifest an index points at, when the node holds it', async () => {
    const store = new MemoryStore();
    const img = store.addOciImage('docker.io/library/multi:v1', { layers: ['m1'] });
    const index = store.addBlob(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: img.manifest.mediaType, digest: `sha256:${'0'.repeat(64)}`, size: 1 },
          img.manifest,
        ],
      }),
    );
    store.deleteImage('docker.io/library/multi:v1');
    store.setImage('docker.io/library/multi:v1', {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: index.digest,
      size: index.size,
    });
    const report = await createNodeCheck({ store, runtime: runtime(), requestsSeen: () => 0 }).check();
    assert.deepEqual(report.images, { checked: 1, complete: 1, withoutLayers: 0 });
    assert.equal(report.layers, 'kept');
  });

  it('says unknown when there is nothing to judge, and when containerd does not answer its version', async () => {
    const check = createNodeCheck({
      store: new MemoryStore(),
      runtime: { containerdVersion: async () => Promise.reject(new Error('down')) },
      requestsSeen: async () => 0,
    });
    const report = await check.check();
    assert.deepEqual([report.mirror, report.layers, report.runtime], ['unknown', 'unknown', 'unknown']);
    assert.equal(check.latest(), report);
  });

  it('takes the registry from an image name', () => {
    assert.equal(imageRegistry('docker.io/library/app:v1'), 'docker.io');
    assert.equal(imageRegistry('127.0.0.1:5000/test/app@sha256:abc'), '127.0.0.1:5000');
    assert.equal(imageRegistry(`sha256:${'a'.repeat(64)}`), undefined);
  });
});

describe('node check reporter', () => {
  it('sets one state per check to 1 and labels the runtime version', async () => {
    const { Registry } = await import('prom-client');
    const { createMetrics } = await import('../metrics/metrics.js');
    const { recordNodeReport } = await import('./reporter.js');
    const registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false });
    recordNodeReport(metrics, {
      mirror: 'not-configured',
      layers: 'discarded',
      runtime: 'containerd 2.1.5',
      images: { checked: 1, complete: 0, withoutLayers: 1 },
      requestsSeen: 0,
      pulledSinceStart: 1,
    });
    const text = await registry.metrics();
    for (const line of [
      'peili_node_check{check="mirror",state="configured"} 0',
      'peili_node_check{check="mirror",state="not-configured"} 1',
      'peili_node_check{check="layers",state="discarded"} 1',
      'peili_node_check{check="layers",state="kept"} 0',
      'peili_runtime_info{runtime="containerd",version="2.1.5"} 1',
    ])
      assert.ok(text.includes(line), line);
  });
});
