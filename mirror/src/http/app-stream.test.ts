// Proves the registry API streams a large blob with bounded memory and honours backpressure,
// through a real socket. The store generates its bytes on demand (a MemoryStore would hold the
// whole blob in memory already, which says nothing about the server).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import { createRegistryService } from '../registry/registry-service.js';
import type { BlobInfo, ContentStore, Digest, ReadRange } from '../store/content-store.js';
import { buildApp } from './app.js';

const HOST = '127.0.3.2';
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const SIZE = 64 * MiB;
const DIGEST: Digest = `sha256:${'5'.repeat(64)}`;

// Forcing collections makes "live memory" measurable; the flag can be set at run time.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Chunk `index` of the generated blob: a fresh buffer each time, as a disk read would give. */
function chunk(index: number, length: number): Buffer {
  return Buffer.alloc(length, index % 251);
}

function expectedDigest(size: number): string {
  const hash = createHash('sha256');
  for (let offset = 0, i = 0; offset < size; offset += CHUNK, i++)
    hash.update(chunk(i, Math.min(CHUNK, size - offset)));
  return hash.digest('hex');
}

/** A ContentStore holding one generated blob of `size` bytes; counts what it produced. */
function generatingStore(size: number): ContentStore & { produced: number } {
  const info: BlobInfo = { digest: DIGEST, size, labels: {} };
  const store = {
    produced: 0,
    listImages: async () => [],
    getImage: async () => undefined,
    listContent: async () => [info],
    info: async (digest: Digest) => (digest === DIGEST ? info : undefined),
    read: async (digest: Digest, range?: ReadRange) => {
      if (digest !== DIGEST || range !== undefined) return undefined;
      let offset = 0;
      let index = 0;
      return new Readable({
        read() {
          if (offset >= size) {
            this.push(null);
            return;
          }
          const length = Math.min(CHUNK, size - offset);
          offset += length;
          store.produced += length;
          this.push(chunk(index++, length));
        },
      });
    },
    subscribe: () => (async function* () {})(),
  };
  return store;
}

async function serve(
  size: number,
): Promise<{ url: string; store: ReturnType<typeof generatingStore>; registry: Registry }> {
  const store = generatingStore(size);
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const app = buildApp({ service: createRegistryService({ store, metrics }), metrics });
  after(() => app.close());
  await app.listen({ host: HOST, port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { url: `http://${HOST}:${address.port}/v2/big/blobs/${DIGEST}?ns=docker.io`, store, registry };
}

function request(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 10_000 }, resolve);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** Live memory (after a forced collection): JS heap plus Buffer memory outside it. */
function liveBytes(): number {
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe('streaming a large blob through a real socket', () => {
  it(`serves ${SIZE / MiB} MiB with heap + buffer growth far below the blob size`, async (t) => {
    const { url, registry } = await serve(SIZE);
    const want = expectedDigest(SIZE);
    const baseline = liveBytes();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, liveBytes())), 100);
    const started = process.hrtime.bigint();
    try {
      const response = await request(url);
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-length'], String(SIZE));
      const hash = createHash('sha256');
      let received = 0;
      for await (const data of response) {
        hash.update(data as Buffer);
        received += (data as Buffer).length;
      }
      assert.equal(received, SIZE);
      assert.equal(hash.digest('hex'), want);
    } finally {
      clearInterval(sampler);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const growth = peak - baseline;
    t.diagnostic(
      `served ${SIZE / MiB} MiB in ${seconds.toFixed(2)} s (${(SIZE / MiB / seconds).toFixed(0)} MiB/s, forced GCs included); ` +
        `peak live-memory growth ${(growth / MiB).toFixed(1)} MiB`,
    );
    // Half the blob: buffering it whole would exceed this; GC timing on a loaded machine does not.
    assert.ok(growth < SIZE / 2, `live memory grew by ${(growth / MiB).toFixed(1)} MiB while streaming`);
    const served = await registry.getSingleMetric('peili_served_bytes_total')?.get();
    assert.equal(served?.values.find((v) => v.labels['source'] === 'local')?.value, SIZE);
  });

  it('reads from the store only as fast as a slow client takes the bytes (backpressure)', async (t) => {
    const { url, store } = await serve(SIZE);
    const response = await request(url);
    assert.equal(response.statusCode, 200);
    response.pause();
    let consumed = 0;
    // Take 2 MiB, then stop reading for a while: the server must stall, not buffer the rest.
    while (consumed < 2 * MiB) {
      const data = response.read() as Buffer | null;
      if (data === null) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no data within 5 s')), 5_000);
          response.once('readable', () => (clearTimeout(timer), resolve()));
        });
        continue;
      }
      consumed += data.length;
    }
    // Wait until the server stops reading from the store (it never would without backpressure,
    // until the whole blob is read): no progress over a few turns of the event loop.
    for (let before = -1; before !== store.produced;) {
      before = store.produced;
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    }
    const ahead = store.produced - consumed;
    t.diagnostic(
      `client took ${(consumed / MiB).toFixed(1)} MiB; store produced ${(store.produced / MiB).toFixed(1)} MiB`,
    );
    // Kernel socket buffers on both sides plus stream high-water marks: a few MiB, never the blob.
    assert.ok(ahead < 16 * MiB, `the server read ${(ahead / MiB).toFixed(1)} MiB ahead of the client`);
    response.destroy();
  });
});
