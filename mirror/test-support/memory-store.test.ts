import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoreEvent } from '../src/store/content-store.js';
import { collect, runContentStoreConformance } from './content-store-conformance.js';
import { MemoryStore, OCI_LAYER_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, sha256Digest } from './memory-store.js';
import { checkRange } from '../src/store/read-range.js';

runContentStoreConformance('MemoryStore', async () => {
  const store = new MemoryStore();
  const layer = Buffer.alloc(64 * 1024 + 13);
  for (let i = 0; i < layer.length; i++) layer[i] = (i * 31 + 7) & 0xff;
  const image = store.addOciImage('127.0.0.1:5000/test/app:v1', { layers: [layer, 'second layer'] });
  const repo = '127.0.0.1:5000/test/app';
  store.setImage(`${repo}@${image.manifest.digest}`, image.manifest);
  store.setImage(image.config.digest, image.manifest);
  const source = { 'containerd.io/distribution.source.127.0.0.1': 'test/app' };
  const configBytes = await collect((await store.read(image.config.digest))!);
  return {
    store,
    fixture: {
      image: {
        name: image.name,
        digestName: `${repo}@${image.manifest.digest}`,
        idName: image.config.digest,
        target: image.manifest,
      },
      blobs: [
        {
          digest: image.manifest.digest,
          bytes: image.manifestBytes,
          labels: {
            ...source,
            'containerd.io/gc.ref.content.config': image.config.digest,
            'containerd.io/gc.ref.content.l.0': image.layers[0]!.digest,
            'containerd.io/gc.ref.content.l.1': image.layers[1]!.digest,
          },
        },
        { digest: image.config.digest, bytes: configBytes, labels: source },
        { digest: image.layers[0]!.digest, bytes: layer, labels: source },
        { digest: image.layers[1]!.digest, bytes: Buffer.from('second layer'), labels: source },
      ],
      createImage: async (name) => void store.setImage(name, image.manifest),
      deleteImage: async (name) => void store.deleteImage(name),
      restart: async () => store.restart(),
    },
  };
});

describe('MemoryStore helpers', () => {
  it('addOciImage stores exactly the blobs, labels and record a pull leaves', async () => {
    const store = new MemoryStore();
    const image = store.addOciImage('docker.io/library/app:v1', { layers: ['layer'] });
    const layerDigest = sha256Digest('layer');
    assert.deepEqual(image.layers, [{ mediaType: OCI_LAYER_MEDIA_TYPE, digest: layerDigest, size: 5 }]);
    assert.deepEqual(await store.getImage('docker.io/library/app:v1'), {
      name: 'docker.io/library/app:v1',
      target: {
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        digest: sha256Digest(image.manifestBytes),
        size: image.manifestBytes.length,
      },
    });
    const source = { 'containerd.io/distribution.source.docker.io': 'library/app' };
    assert.deepEqual(
      (await store.listContent()).sort((a, b) => a.digest.localeCompare(b.digest)),
      [
        { digest: layerDigest, size: 5, labels: source },
        { digest: image.config.digest, size: image.config.size, labels: source },
        {
          digest: image.manifest.digest,
          size: image.manifest.size,
          labels: {
            ...source,
            'containerd.io/gc.ref.content.config': image.config.digest,
            'containerd.io/gc.ref.content.l.0': layerDigest,
          },
        },
      ].sort((a, b) => a.digest.localeCompare(b.digest)),
    );
  });

  it('drops the port from the source label and keeps nested repositories', () => {
    const store = new MemoryStore();
    store.addOciImage('127.0.0.1:5000/org/team/app:v2', { layers: ['x'] });
    return store
      .info(sha256Digest('x'))
      .then((info) =>
        assert.deepEqual(info?.labels, { 'containerd.io/distribution.source.127.0.0.1': 'org/team/app' }),
      );
  });

  it('addBlob merges labels of the same content', async () => {
    const store = new MemoryStore();
    store.addBlob('same', { a: '1' });
    const info = store.addBlob('same', { b: '2' });
    assert.deepEqual(info, { digest: sha256Digest('same'), size: 4, labels: { a: '1', b: '2' } });
  });

  it('helpers emit the matching events in order', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const seen: StoreEvent[] = [];
    const consumer = (async () => {
      for await (const event of store.subscribe(controller.signal)) seen.push(event);
    })();
    const target = { mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: sha256Digest('m'), size: 1 };
    const blob = store.addBlob('m');
    store.addBlob('m');
    store.setImage('r/a:1', target);
    store.setImage('r/a:1', target);
    store.deleteImage('r/a:1');
    store.deleteImage('r/a:1');
    store.removeBlob(blob.digest);
    store.removeBlob(blob.digest);
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await consumer;
    assert.deepEqual(seen, [
      { kind: 'content-create', digest: blob.digest, size: 1 },
      { kind: 'image-create', name: 'r/a:1', target },
      { kind: 'image-update', name: 'r/a:1', target },
      { kind: 'image-delete', name: 'r/a:1' },
      { kind: 'content-delete', digest: blob.digest },
    ]);
    assert.equal(store.subscriberCount, 0);
  });

  it('restart ends every subscription and new ones work', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const first = store.subscribe(controller.signal)[Symbol.asyncIterator]();
    const second = store.subscribe(controller.signal)[Symbol.asyncIterator]();
    assert.equal(store.subscriberCount, 2);
    store.restart();
    assert.deepEqual(await first.next(), { done: true, value: undefined });
    assert.deepEqual(await second.next(), { done: true, value: undefined });
    const third = store.subscribe(controller.signal)[Symbol.asyncIterator]();
    store.emit({ kind: 'image-delete', name: 'x' });
    assert.deepEqual(await third.next(), { done: false, value: { kind: 'image-delete', name: 'x' } });
    controller.abort();
    assert.deepEqual(await third.next(), { done: true, value: undefined });
  });

  it('a subscription on an aborted signal ends at once', async () => {
    const store = new MemoryStore();
    const events = store.subscribe(AbortSignal.abort())[Symbol.asyncIterator]();
    assert.deepEqual(await events.next(), { done: true, value: undefined });
    assert.equal(store.subscriberCount, 0);
  });
});

describe('checkRange', () => {
  const cases: {
    range: { offset: number; length?: number } | undefined;
    size: number;
    want: { start: number; end: number } | string;
  }[] = [
    { range: undefined, size: 10, want: { start: 0, end: 10 } },
    { range: { offset: 3 }, size: 10, want: { start: 3, end: 10 } },
    { range: { offset: 3, length: 2 }, size: 10, want: { start: 3, end: 5 } },
    { range: { offset: 10, length: 0 }, size: 10, want: { start: 10, end: 10 } },
    { range: { offset: 10 }, size: 10, want: { start: 10, end: 10 } },
    { range: undefined, size: 0, want: { start: 0, end: 0 } },
    { range: { offset: 11 }, size: 10, want: 'range offset=11 length=rest is outside the blob of 10 bytes' },
    {
      range: { offset: 9, length: 2 },
      size: 10,
      want: 'range offset=9 length=2 is outside the blob of 10 bytes',
    },
    { range: { offset: -1 }, size: 10, want: 'range offset=-1 length=rest is outside the blob of 10 bytes' },
    {
      range: { offset: 0, length: -1 },
      size: 10,
      want: 'range offset=0 length=-1 is outside the blob of 10 bytes',
    },
    {
      range: { offset: 0.5 },
      size: 10,
      want: 'range offset=0.5 length=rest is outside the blob of 10 bytes',
    },
  ];
  for (const { range, size, want } of cases) {
    it(`${JSON.stringify(range)} of ${size} bytes`, () => {
      if (typeof want === 'string') {
        assert.throws(() => checkRange(range, size), { name: 'RangeError', message: want });
      } else {
        assert.deepEqual(checkRange(range, size), want);
      }
    });
  }
});
