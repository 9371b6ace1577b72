import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  BACKLOG_HIGH,
  BACKLOG_LOW,
  createBlobHasher,
  stopHashWorker,
  WORKER_MIN_SIZE,
} from './blob-hasher.js';

/** Feeds `bytes` in pseudo-random chunk sizes (1 byte to 200 KiB). */
function feed(hasher: ReturnType<typeof createBlobHasher>, bytes: Buffer, seed = 7): void {
  let offset = 0;
  let state = seed;
  while (offset < bytes.length) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % (200 * 1024));
    const chunk = Buffer.from(bytes.subarray(offset, offset + size));
    hasher.update(chunk);
    chunk.fill(0); // the caller may reuse its chunk at once
    offset += size;
  }
}

const expected = (algorithm: string, bytes: Buffer): string =>
  createHash(algorithm).update(bytes).digest('hex');

describe('createBlobHasher', () => {
  const sizes = [0, 1, 512 * 1024 - 1, 512 * 1024, 512 * 1024 + 1, 3 * 512 * 1024 + 7];

  for (const path of ['inline', 'worker'] as const) {
    it(`gives the same digest as node:crypto (${path}), for sizes around the batch size`, async () => {
      for (const size of sizes) {
        const bytes = randomBytes(size);
        const hasher = createBlobHasher('sha256', path === 'worker' ? WORKER_MIN_SIZE : 0);
        feed(hasher, bytes, size);
        assert.equal(await hasher.digest(), expected('sha256', bytes), `size ${size}`);
      }
    });
  }

  it('hashes sha512 on the worker too', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 3);
    const hasher = createBlobHasher('sha512', bytes.length);
    feed(hasher, bytes);
    assert.equal(await hasher.digest(), expected('sha512', bytes));
  });

  it('keeps interleaved jobs apart', async () => {
    const blobs = Array.from({ length: 5 }, (_, i) => randomBytes(WORKER_MIN_SIZE + i * 100_003));
    const hashers = blobs.map((b) => createBlobHasher('sha256', b.length));
    for (let offset = 0; offset < blobs[4]!.length; offset += 65_536) {
      blobs.forEach((blob, i) => hashers[i]!.update(blob.subarray(offset, offset + 65_536)));
    }
    const digests = await Promise.all(hashers.map((h) => h.digest()));
    assert.deepEqual(
      digests,
      blobs.map((b) => expected('sha256', b)),
    );
  });

  it('reports a backlog when fed faster than it hashes, and calls onDrain once it caught up', async () => {
    const bytes = randomBytes(24 * 1024 * 1024);
    const hasher = createBlobHasher('sha256', bytes.length);
    hasher.update(bytes); // one synchronous burst: the worker cannot have kept up
    assert.ok(hasher.backlog > BACKLOG_HIGH, `backlog ${hasher.backlog}`);
    await new Promise<void>((resolve) => hasher.onDrain(resolve));
    assert.ok(hasher.backlog <= BACKLOG_LOW, `backlog ${hasher.backlog} after drain`);
    assert.equal(await hasher.digest(), expected('sha256', bytes));
  });

  it('drops a cancelled job without disturbing the next one', async () => {
    const first = createBlobHasher('sha256', WORKER_MIN_SIZE);
    first.update(randomBytes(WORKER_MIN_SIZE));
    first.cancel();
    const bytes = randomBytes(WORKER_MIN_SIZE + 1);
    const second = createBlobHasher('sha256', bytes.length);
    second.update(bytes);
    assert.equal(await second.digest(), expected('sha256', bytes));
  });

  it('fails the jobs of a stopped worker instead of giving a digest, and starts a new one after', async () => {
    const bytes = randomBytes(WORKER_MIN_SIZE);
    const running = createBlobHasher('sha256', bytes.length);
    running.update(bytes);
    await stopHashWorker();
    await assert.rejects(running.digest(), /hash worker stopped/);
    const next = createBlobHasher('sha256', bytes.length);
    next.update(bytes);
    assert.equal(await next.digest(), expected('sha256', bytes));
  });
});
