import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createRegistryService } from '../registry/registry-service.js';
import type { ContentStore } from '../store/content-store.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { buildApp } from './app.js';
import { createBufferReclaimer, exposedYoungCollection, RECLAIM_DEFAULTS } from './buffer-reclaim.js';

const MiB = 1024 * 1024;

describe('createBufferReclaimer', () => {
  const cases: { name: string; everyBytes?: number; chunks: number[]; collections: number }[] = [
    { name: 'nothing streamed', chunks: [], collections: 0 },
    { name: 'just under the default 8 MiB', chunks: [4 * MiB, 4 * MiB - 1], collections: 0 },
    { name: 'exactly 8 MiB in 1 MiB chunks', chunks: Array(8).fill(MiB), collections: 1 },
    { name: '20 MiB in 1 MiB chunks', chunks: Array(20).fill(MiB), collections: 2 },
    { name: 'one chunk larger than the interval counts once', chunks: [30 * MiB], collections: 1 },
    { name: 'the count restarts after each collection', chunks: [9 * MiB, 7 * MiB, MiB], collections: 2 },
    { name: 'a custom interval', everyBytes: 64 * 1024, chunks: Array(10).fill(16 * 1024), collections: 2 },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.collections} collection(s)`, () => {
      let collections = 0;
      const reclaimer = createBufferReclaimer(
        () => collections++,
        c.everyBytes === undefined ? {} : { everyBytes: c.everyBytes },
      );
      for (const bytes of c.chunks) reclaimer.streamed(bytes);
      assert.equal(collections, c.collections);
    });
  }

  it('defaults to 8 MiB between collections', () => {
    assert.equal(RECLAIM_DEFAULTS.everyBytes, 8 * MiB);
  });

  for (const everyBytes of [0, -1, 1.5, Number.NaN]) {
    it(`refuses everyBytes ${everyBytes}`, () => {
      assert.throws(() => createBufferReclaimer(() => {}, { everyBytes }), {
        name: 'RangeError',
        message: `everyBytes: expected a positive whole number of bytes, got ${everyBytes}`,
      });
    });
  }
});

describe('exposedYoungCollection', () => {
  it('is undefined when Node.js runs without --expose-gc', () => {
    assert.equal(exposedYoungCollection({}), undefined);
  });

  it('asks the runtime for a young-generation collection', () => {
    const calls: unknown[] = [];
    const gc = ((options?: unknown) => void calls.push(options)) as NodeJS.GCFunction;
    const collect = exposedYoungCollection({ gc });
    assert.ok(collect);
    collect();
    assert.deepEqual(calls, [{ type: 'minor' }]);
  });
});

describe('buildApp with a reclaimer', () => {
  const memory = new MemoryStore();
  const blob = memory.addBlob(Buffer.alloc(20 * MiB, 7));
  // Blobs come out in 1 MiB chunks, as the containerd store reads them from disk.
  const store: ContentStore = {
    listImages: (signal) => memory.listImages(signal),
    getImage: (name, signal) => memory.getImage(name, signal),
    info: (digest, signal) => memory.info(digest, signal),
    listContent: (signal) => memory.listContent(signal),
    subscribe: (signal) => memory.subscribe(signal),
    read: async (digest, range, signal) => {
      const whole = await memory.read(digest, range, signal);
      if (!whole) return undefined;
      const bytes = Buffer.concat(await whole.toArray());
      const chunks = [];
      for (let at = 0; at < bytes.length; at += MiB) chunks.push(bytes.subarray(at, at + MiB));
      return Readable.from(chunks, { objectMode: false });
    },
  };
  let collections = 0;
  const app = buildApp({
    service: createRegistryService({ store }),
    reclaimer: createBufferReclaimer(() => collections++),
  });
  after(() => app.close());

  const cases: {
    name: string;
    method: 'GET' | 'HEAD';
    url: string;
    headers?: Record<string, string>;
    bytes: number;
    collections: number;
  }[] = [
    {
      name: 'a 20 MiB blob streamed',
      method: 'GET',
      url: `/v2/library/app/blobs/${blob.digest}?ns=docker.io`,
      bytes: 20 * MiB,
      collections: 2,
    },
    {
      name: 'the first 9 MiB of it (Range)',
      method: 'GET',
      url: `/v2/library/app/blobs/${blob.digest}?ns=docker.io`,
      headers: { range: `bytes=0-${9 * MiB - 1}` },
      bytes: 9 * MiB,
      collections: 1,
    },
    {
      name: 'HEAD of the blob (nothing streamed)',
      method: 'HEAD',
      url: `/v2/library/app/blobs/${blob.digest}?ns=docker.io`,
      bytes: 0,
      collections: 0,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.collections} collection(s)`, async () => {
      collections = 0;
      const response = await app.inject({ method: c.method, url: c.url, headers: c.headers ?? {} });
      assert.ok(response.statusCode === 200 || response.statusCode === 206, `status ${response.statusCode}`);
      assert.equal(response.rawPayload.length, c.bytes);
      assert.equal(collections, c.collections);
    });
  }
});
