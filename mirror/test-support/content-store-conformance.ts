// The behaviour every ContentStore must share, written once and run against the in-memory fake
// (memory-store.test.ts) and against a real containerd (containerd-store.int.test.ts), so the fake
// cannot drift from what the mirror meets in production.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import type { ContentStore, Descriptor, Digest, StoreEvent } from '../src/store/content-store.js';

/** A blob the fixture guarantees is in the store, with its exact bytes. */
export interface ConformanceBlob {
  readonly digest: Digest;
  readonly bytes: Buffer;
  /** Labels the blob must carry with exactly these values (the store may hold more). */
  readonly labels: Readonly<Record<string, string>>;
}

/** The image the fixture put in the store before the suite runs. */
export interface ConformanceImage {
  /** The tag name, e.g. `127.0.0.1:5000/test/app:v1`. */
  readonly name: string;
  /** The same image by digest: `<registry>/<repository>@sha256:<manifest>`. */
  readonly digestName: string;
  /** CRI's bare id: `sha256:<config>` (no `/`). */
  readonly idName: string;
  /** What all three names point at (the manifest). */
  readonly target: Descriptor;
}

/** How the suite makes content appear and change in the store under test. */
export interface ConformanceFixture {
  readonly image: ConformanceImage;
  /** At least the manifest, the config and one layer of `image`; the largest is used for ranges. */
  readonly blobs: readonly ConformanceBlob[];
  /** Creates an image record `name` pointing at `image.target` (a tag, as `ctr images tag` does). */
  createImage(name: string, signal: AbortSignal): Promise<void>;
  /** Deletes the image record `name`. */
  deleteImage(name: string, signal: AbortSignal): Promise<void>;
  /** Ends the store's event stream as a containerd restart does; resolves once the store answers again. */
  restart(signal: AbortSignal): Promise<void>;
}

/** What a conformance setup returns. */
export interface ConformanceContext {
  readonly store: ContentStore;
  readonly fixture: ConformanceFixture;
  /** Releases what setup started (called once, after the suite). */
  readonly teardown?: () => Promise<void>;
}

/** How long any single wait of the suite may take before it fails (real daemons are slow on 2 cores). */
const WAIT_MS = 10_000;

const MISSING_DIGEST: Digest = `sha256:${'0'.repeat(63)}1`;

/** Registers the shared ContentStore test suite under `describe(name)`; `setup` runs once before it. */
export function runContentStoreConformance(name: string, setup: () => Promise<ConformanceContext>): void {
  describe(`ContentStore conformance: ${name}`, { timeout: 120_000 }, () => {
    let ctx: ConformanceContext;
    const store = (): ContentStore => ctx.store;
    const fixture = (): ConformanceFixture => ctx.fixture;
    const largest = (): ConformanceBlob =>
      fixture().blobs.reduce((a, b) => (b.bytes.length > a.bytes.length ? b : a));

    before(async () => {
      ctx = await setup();
      assert.ok(fixture().blobs.length >= 3, 'the fixture must provide manifest, config and a layer');
    });
    after(async () => {
      await ctx?.teardown?.();
    });

    describe('images', () => {
      it('lists the image under its tag, digest and bare-id names', async () => {
        const { image } = fixture();
        const byName = new Map((await store().listImages()).map((record) => [record.name, record]));
        for (const imageName of [image.name, image.digestName, image.idName]) {
          assert.deepEqual(byName.get(imageName), { name: imageName, target: image.target }, imageName);
        }
      });

      for (const which of ['name', 'digestName', 'idName'] as const) {
        it(`gets the image by its ${which}`, async () => {
          const { image } = fixture();
          assert.deepEqual(await store().getImage(image[which]), {
            name: image[which],
            target: image.target,
          });
        });
      }

      it('returns undefined for an image it does not hold', async () => {
        assert.equal(await store().getImage('127.0.0.1:5000/test/absent:v9'), undefined);
      });
    });

    describe('info', () => {
      it('gives size and labels of every fixture blob', async () => {
        for (const blob of fixture().blobs) {
          const info = await store().info(blob.digest);
          assert.ok(info, `info(${blob.digest})`);
          assert.equal(info.digest, blob.digest);
          assert.equal(info.size, blob.bytes.length, `size of ${blob.digest}`);
          for (const [key, value] of Object.entries(blob.labels)) {
            assert.equal(info.labels[key], value, `label ${key} of ${blob.digest}`);
          }
        }
      });

      it('returns undefined for a blob it does not hold', async () => {
        assert.equal(await store().info(MISSING_DIGEST), undefined);
      });

      it('returns undefined for a malformed digest', async () => {
        for (const digest of ['sha256:../../etc/passwd', 'sha256:abc', 'md5:00'] as Digest[]) {
          assert.equal(await store().info(digest), undefined, digest);
        }
      });
    });

    describe('listContent', () => {
      it('includes every fixture blob with its size and labels', async () => {
        const byDigest = new Map((await store().listContent()).map((info) => [info.digest, info]));
        for (const blob of fixture().blobs) {
          const info = byDigest.get(blob.digest);
          assert.ok(info, `listContent has ${blob.digest}`);
          assert.equal(info.size, blob.bytes.length);
          for (const [key, value] of Object.entries(blob.labels)) {
            assert.equal(info.labels[key], value, `label ${key} of ${blob.digest}`);
          }
        }
      });
    });

    describe('read', () => {
      it('reads every fixture blob whole', async () => {
        for (const blob of fixture().blobs) {
          const stream = await store().read(blob.digest);
          assert.ok(stream, `read(${blob.digest})`);
          assert.ok((await collect(stream)).equals(blob.bytes), `bytes of ${blob.digest}`);
        }
      });

      const ranges: { title: string; range: (size: number) => { offset: number; length?: number } }[] = [
        { title: 'the first byte', range: () => ({ offset: 0, length: 1 }) },
        {
          title: 'a window in the middle',
          range: (size) => ({ offset: Math.floor(size / 3), length: Math.floor(size / 3) }),
        },
        { title: 'from an offset to the end', range: (size) => ({ offset: size - 7 }) },
        { title: 'the last byte', range: (size) => ({ offset: size - 1, length: 1 }) },
        { title: 'zero bytes at the end', range: (size) => ({ offset: size, length: 0 }) },
        { title: 'the end with no length', range: (size) => ({ offset: size }) },
        { title: 'everything by explicit range', range: (size) => ({ offset: 0, length: size }) },
      ];
      for (const { title, range } of ranges) {
        it(`reads ${title}`, async () => {
          const blob = largest();
          const r = range(blob.bytes.length);
          const stream = await store().read(blob.digest, r);
          assert.ok(stream);
          const end = r.length === undefined ? blob.bytes.length : r.offset + r.length;
          assert.ok((await collect(stream)).equals(blob.bytes.subarray(r.offset, end)), JSON.stringify(r));
        });
      }

      it('rejects a range past the end with a RangeError', async () => {
        const blob = largest();
        const size = blob.bytes.length;
        await assert.rejects(store().read(blob.digest, { offset: size - 1, length: 2 }), {
          name: 'RangeError',
          message: `range offset=${size - 1} length=2 is outside the blob of ${size} bytes`,
        });
        await assert.rejects(store().read(blob.digest, { offset: size + 1 }), {
          name: 'RangeError',
          message: `range offset=${size + 1} length=rest is outside the blob of ${size} bytes`,
        });
      });

      it('returns undefined for a blob it does not hold', async () => {
        assert.equal(await store().read(MISSING_DIGEST), undefined);
        assert.equal(await store().read(MISSING_DIGEST, { offset: 0, length: 1 }), undefined);
      });

      it('returns undefined for a malformed digest', async () => {
        assert.equal(await store().read('sha256:../../../etc/passwd' as Digest), undefined);
      });

      it('rejects with AbortError when the signal is already aborted', async () => {
        await assert.rejects(store().read(largest().digest, undefined, AbortSignal.abort()), {
          name: 'AbortError',
        });
      });

      it('destroys the stream when the signal aborts mid-read', async () => {
        const controller = new AbortController();
        const stream = await store().read(largest().digest, undefined, controller.signal);
        assert.ok(stream);
        controller.abort();
        await assert.rejects(collect(stream), { name: 'AbortError' });
      });
    });

    describe('subscribe', () => {
      it('sees image create and delete, and ends on abort', async () => {
        const controller = new AbortController();
        const events = store().subscribe(controller.signal)[Symbol.asyncIterator]();
        try {
          const { pending } = await waitUntilSubscribed(events, fixture());
          const name = `${fixture().image.name.replace(/:[^:/]+$/, '')}:conformance-${Date.now()}`;
          await fixture().createImage(name, AbortSignal.timeout(WAIT_MS));
          const created = await nextMatching(events, pending, (e) => 'name' in e && e.name === name);
          assert.equal(created.kind, 'image-create');
          await fixture().deleteImage(name, AbortSignal.timeout(WAIT_MS));
          // containerd 2.x publishes an image-update of the record just before its delete.
          const deleted = await nextMatching(
            events,
            undefined,
            (e) => 'name' in e && e.name === name && e.kind !== 'image-update',
          );
          assert.deepEqual(deleted, { kind: 'image-delete', name });
          controller.abort();
          assert.deepEqual(await withTimeout(drain(events), 'the iterable to end after abort'), 'ended');
        } finally {
          controller.abort();
        }
      });

      it('ends when the store restarts, and serves again afterwards', async () => {
        const controller = new AbortController();
        const events = store().subscribe(controller.signal)[Symbol.asyncIterator]();
        try {
          const { pending } = await waitUntilSubscribed(events, fixture());
          // The probe's own next() is still open: the restart must settle it with done.
          await fixture().restart(AbortSignal.timeout(WAIT_MS * 3));
          const ended = await withTimeout(
            (async () => {
              if (pending) {
                const result = await pending;
                if (result.done) return 'ended';
              }
              return drain(events);
            })(),
            'the iterable to end after a restart',
          );
          assert.equal(ended, 'ended');
          assert.deepEqual(await store().getImage(fixture().image.name), {
            name: fixture().image.name,
            target: fixture().image.target,
          });
        } finally {
          controller.abort();
        }
      });
    });
  });
}

type EventIterator = AsyncIterator<StoreEvent>;
type Pending = Promise<IteratorResult<StoreEvent>> | undefined;

/**
 * Creates and deletes probe images until one of their events arrives, so the suite knows the
 * subscription is live (a gRPC stream gives no other sign). Returns the next() still in flight.
 */
async function waitUntilSubscribed(
  events: EventIterator,
  fixture: ConformanceFixture,
): Promise<{ pending: Pending }> {
  const deadline = Date.now() + WAIT_MS;
  const next: Promise<IteratorResult<StoreEvent>> = events.next();
  for (let i = 0; Date.now() < deadline; i++) {
    const probe = `${fixture.image.name.replace(/:[^:/]+$/, '')}:probe-${Date.now()}-${i}`;
    await fixture.createImage(probe, AbortSignal.timeout(WAIT_MS));
    await fixture.deleteImage(probe, AbortSignal.timeout(WAIT_MS));
    const result = await Promise.race([next, sleep(200).then(() => 'waiting' as const)]);
    if (result === 'waiting') continue;
    if (result.done) throw new Error('the event stream ended before any event arrived');
    // Swallow the rest of the probe events of this round before handing over.
    // Boxed: returning the bare promise from an async function would wait for it.
    return { pending: events.next() };
  }
  throw new Error(`no event arrived within ${WAIT_MS} ms of subscribing`);
}

async function nextMatching(
  events: EventIterator,
  pending: Pending,
  match: (event: StoreEvent) => boolean,
): Promise<StoreEvent> {
  const deadline = Date.now() + WAIT_MS;
  let next = pending ?? events.next();
  for (;;) {
    const left = deadline - Date.now();
    const result = await Promise.race([next, sleep(Math.max(left, 0)).then(() => 'timeout' as const)]);
    if (result === 'timeout') throw new Error(`no matching event within ${WAIT_MS} ms`);
    if (result.done) throw new Error('the event stream ended while waiting for an event');
    if (match(result.value)) return result.value;
    next = events.next();
  }
}

async function drain(events: EventIterator): Promise<'ended'> {
  for (;;) {
    const result = await events.next();
    if (result.done) return 'ended';
  }
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)),
          WAIT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Reads a stream to the end into one Buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
