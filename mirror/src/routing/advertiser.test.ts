import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import type { ContentStore, Digest, StoreEvent } from '../store/content-store.js';
import { MemoryStore, sha256Digest } from '../../test-support/memory-store.js';
import type { Clock } from '../clock/clock.js';
import { ManualClock } from '../../test-support/manual-clock.js';
import { createAdvertiser, tagKeyOf } from './advertiser.js';
import { MemoryNetwork } from '../../test-support/memory-router.js';
import { collect, eventually } from '../../test-support/router-conformance.js';

const SOURCE = { 'containerd.io/distribution.source.docker.io': 'library/app' };

/** Lets in-memory work (store, router) that a fired timer started run to its end. */
async function flush(): Promise<void> {
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(
  store: ContentStore = new MemoryStore(),
  options = {},
  servedFromPeer?: (d: Digest) => boolean,
  clock?: Clock,
) {
  const network = new MemoryNetwork();
  const router = network.join({ id: 'self:5001', registryUrl: 'http://self:5000' });
  const other = network.join({ id: 'other:5001', registryUrl: 'http://other:5000' });
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const advertiser = createAdvertiser(
    { store, router, metrics, servedFromPeer, clock },
    { rescanDelayMs: 10, resubscribeMs: 10, ...options },
  );
  const stop = new AbortController();
  after(async () => {
    stop.abort();
    await advertiser.stopped();
  });
  const keys = (): string[] => [...advertiser.advertised()].sort();
  return { router, other, registry, advertiser, stop, keys };
}

describe('advertiser key selection', () => {
  const names: [string, string | undefined][] = [
    ['docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['127.0.0.1:5000/test/app:v1', '127.0.0.1:5000/test/app:v1'],
    [`docker.io/library/nginx@sha256:${'a'.repeat(64)}`, undefined],
    [`sha256:${'b'.repeat(64)}`, undefined],
    ['docker.io/library/nginx', undefined],
  ];
  for (const [name, key] of names)
    it(`maps image ${name} to ${key}`, () => assert.equal(tagKeyOf(name), key));
});

describe('advertiser', () => {
  it('advertises tags and every blob (labelled or not) at start, and only the blobs the store holds', async () => {
    const store = new MemoryStore();
    const app = store.addOciImage('docker.io/library/app:v1', { layers: ['layer-a', 'layer-b'] });
    store.setImage(`docker.io/library/app@${app.manifest.digest}`, app.manifest);
    store.setImage(app.config.digest, app.manifest); // CRI's bare config id
    const unlabelled = store.addBlob('unlabelled');
    store.removeBlob(app.layers[1]!.digest); // an image held without one of its layers
    const t = setup(store);
    await t.advertiser.start(t.stop.signal);
    assert.deepEqual(
      t.keys(),
      [
        'docker.io/library/app:v1',
        app.manifest.digest,
        app.config.digest,
        app.layers[0]!.digest,
        unlabelled.digest,
      ].sort(),
    );
    assert.deepEqual(await collect(t.other, app.layers[0]!.digest), [
      { id: 'self:5001', registryUrl: 'http://self:5000' },
    ]);
    assert.deepEqual(await collect(t.other, app.layers[1]!.digest), []);
  });

  it('follows image and content events: new pulls, deleted images, removed blobs', async () => {
    const store = new MemoryStore();
    const t = setup(store);
    await t.advertiser.start(t.stop.signal);
    assert.deepEqual(t.keys(), []);
    const app = store.addOciImage('ghcr.io/org/app:v2', { layers: ['one'] });
    const expected = [
      'ghcr.io/org/app:v2',
      app.manifest.digest,
      app.config.digest,
      app.layers[0]!.digest,
    ].sort();
    assert.equal(
      await eventually(async () => t.keys().join() === expected.join(), 2000),
      true,
      t.keys().join(),
    );
    store.deleteImage('ghcr.io/org/app:v2');
    store.removeBlob(app.layers[0]!.digest);
    const left = [app.manifest.digest, app.config.digest].sort();
    assert.equal(await eventually(async () => t.keys().join() === left.join(), 2000), true, t.keys().join());
    assert.deepEqual(await collect(t.other, 'ghcr.io/org/app:v2'), []);
  });

  it('advertises a new blob from its content-create event at once, before containerd labels it', async () => {
    // containerd 2.1+ announces each blob as it lands and adds its distribution-source label just
    // after (spegel#1021): no image event, rescan or resync may be needed to advertise it.
    const store = new MemoryStore();
    const t = setup(store, { rescanDelayMs: 3_600_000, resyncIntervalMs: 3_600_000 });
    await t.advertiser.start(t.stop.signal);
    const layer = store.addBlob('a layer mid-pull');
    assert.equal(await eventually(async () => t.keys().join() === layer.digest, 2000), true, t.keys().join());
    assert.deepEqual(await collect(t.other, layer.digest), [
      { id: 'self:5001', registryUrl: 'http://self:5000' },
    ]);
  });

  it('re-subscribes and resyncs after the event stream ends (containerd restart)', async () => {
    const store = new MemoryStore();
    const before = store.addOciImage('docker.io/library/old:v1', { layers: ['old'] });
    const t = setup(store);
    await t.advertiser.start(t.stop.signal);
    store.restart();
    assert.equal(store.subscriberCount, 0);
    // Changes while nobody listens: only the resync can see them.
    store.deleteImage('docker.io/library/old:v1');
    for (const blob of [before.manifest, before.config, ...before.layers]) store.removeBlob(blob.digest);
    const after = store.addOciImage('docker.io/library/new:v1', { layers: ['new'] });
    const expected = [
      'docker.io/library/new:v1',
      after.manifest.digest,
      after.config.digest,
      after.layers[0]!.digest,
    ].sort();
    assert.equal(
      await eventually(async () => t.keys().join() === expected.join(), 2000),
      true,
      t.keys().join(),
    );
    assert.equal(await eventually(async () => store.subscriberCount === 1, 2000), true);
  });

  it('resyncs periodically when events are missed', async () => {
    const inner = new MemoryStore();
    // A store whose event stream stays open but never delivers anything.
    const deaf: ContentStore = Object.assign(Object.create(inner) as ContentStore, {
      subscribe: (signal: AbortSignal): AsyncIterable<StoreEvent> => ({
        [Symbol.asyncIterator]: () => ({
          next: () =>
            new Promise<IteratorResult<StoreEvent>>((resolve) =>
              signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), {
                once: true,
              }),
            ),
        }),
      }),
      listContent: (s?: AbortSignal) => inner.listContent(s),
      listImages: (s?: AbortSignal) => inner.listImages(s),
      info: (d: Digest, s?: AbortSignal) => inner.info(d, s),
    });
    const clock = new ManualClock();
    const t = setup(deaf, { resyncIntervalMs: 30 }, undefined, clock);
    await t.advertiser.start(t.stop.signal);
    const blob = inner.addBlob('late', SOURCE);
    await clock.tick(29);
    assert.deepEqual(t.keys(), [], 'not before the interval');
    await clock.tick(1);
    await flush();
    assert.deepEqual(t.keys(), [blob.digest]);
  });

  it('counts new blobs as ingested via peer or upstream, not the content present at start', async () => {
    const store = new MemoryStore();
    store.addBlob('present at start', SOURCE);
    const peerBytes = Buffer.alloc(1234, 1);
    const peerDigest = sha256Digest(peerBytes);
    const t = setup(store, {}, (digest) => digest === peerDigest);
    await t.advertiser.start(t.stop.signal);
    store.addBlob(peerBytes, SOURCE);
    store.addBlob(Buffer.alloc(100, 2), SOURCE);
    store.addBlob('x'.repeat(7)); // unlabelled (a local import): ingested too
    const text = async (): Promise<string> => t.registry.metrics();
    assert.equal(
      await eventually(
        async () => (await text()).includes('peili_ingested_bytes_total{via="upstream"} 107\n'),
        2000,
      ),
      true,
      await text(),
    );
    assert.ok((await text()).includes('peili_ingested_bytes_total{via="peer"} 1234\n'), await text());
  });

  it('stops following the store when aborted: no events, no rescans, no periodic resyncs', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock();
    const t = setup(store, { resyncIntervalMs: 1_000 }, undefined, clock);
    await t.advertiser.start(t.stop.signal);
    assert.equal(store.subscriberCount, 1);
    assert.equal(clock.pending, 1, 'the periodic resync is armed');
    t.stop.abort();
    await t.advertiser.stopped();
    assert.equal(store.subscriberCount, 0);
    assert.equal(clock.pending, 0, 'every timer is cancelled');
    store.addBlob('after stop', SOURCE);
    await clock.tick(10_000); // past every rescan delay and resync interval
    assert.deepEqual(t.keys(), []);
  });
});
