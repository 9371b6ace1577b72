// ContainerdStore against an in-process fake containerd: a grpc-js server on a unix socket in a
// temporary directory, serving this folder's .proto files. Covers what a real daemon cannot be
// made to do on cue: hanging calls, errors, gaps in a Read stream, broken event streams.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Digest, StoreEvent } from '../store/content-store.js';
import { collect } from '../../test-support/content-store-conformance.js';
import { ContainerdError, createContainerdStore, findProtoDir } from './containerd-store.js';
import type { ContainerdStore, ContainerdStoreOptions } from './containerd-store.js';

const digestOf = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const BLOB = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + 3) & 0xff));
const BLOB_DIGEST = digestOf(BLOB);
// Big enough to overflow every buffer between the fake's writes and the consumer.
const BIG = Buffer.alloc(32 * 1024 * 1024, 0x5a);
const BIG_DIGEST = digestOf(BIG);
const BLOBS = new Map<string, Buffer>([
  [BLOB_DIGEST, BLOB],
  [BIG_DIGEST, BIG],
]);
const TARGET = {
  media_type: 'application/vnd.oci.image.manifest.v1+json',
  digest: BLOB_DIGEST,
  size: 300_000,
};

type Behaviour = 'normal' | 'hang' | 'internal' | 'gap';

interface FakeState {
  behaviour: Behaviour;
  namespaces: string[];
  readRequests: { digest: string; offset: number; size: number }[];
  /** Bytes the fake's Read handlers have handed to grpc-js so far. */
  written: number;
  subscribeFilters: string[][];
  /** Events the next Subscribe sends, then how it ends. */
  envelopes: { topic: string; type_url: string; value: Buffer }[];
  subscribeEnd: 'end' | 'unavailable' | 'hold';
}

interface RawCall {
  metadata: grpc.Metadata;
}

async function startFake(socket: string, state: FakeState): Promise<grpc.Server> {
  const definition = protoLoader.loadSync(
    ['images.proto', 'content.proto', 'events.proto', 'version.proto'],
    {
      includeDirs: [findProtoDir()],
      keepCase: true,
      longs: Number,
      defaults: true,
    },
  );
  const root = grpc.loadPackageDefinition(definition);
  const pick = (path: string): grpc.ServiceDefinition => {
    let node: unknown = root;
    for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
    return (node as { service: grpc.ServiceDefinition }).service;
  };
  const seen = (call: RawCall): void => {
    state.namespaces.push(String(call.metadata.get('containerd-namespace')[0]));
  };
  type Callback = (error: Partial<grpc.StatusObject> | null, value?: unknown) => void;
  const unary =
    (answer: (request: Record<string, unknown>) => unknown) =>
    (call: RawCall & { request: Record<string, unknown> }, callback: Callback): void => {
      seen(call);
      if (state.behaviour === 'hang') return;
      if (state.behaviour === 'internal') return callback({ code: grpc.status.INTERNAL, details: 'boom' });
      const value = answer(call.request);
      if (value === undefined) return callback({ code: grpc.status.NOT_FOUND, details: 'not found' });
      callback(null, value);
    };
  const server = new grpc.Server();
  server.addService(pick('containerd.services.images.v1.Images'), {
    Get: unary((request) =>
      request.name === 'r/app:v1' ? { image: { name: 'r/app:v1', target: TARGET } } : undefined,
    ),
    List: unary(() => ({
      images: [
        { name: 'r/app:v1', target: TARGET },
        { name: 'broken', target: { ...TARGET, digest: 'nonsense' } },
      ],
    })),
  });
  server.addService(pick('containerd.services.content.v1.Content'), {
    Info: unary((request) => {
      const blob = BLOBS.get(String(request.digest));
      if (!blob) return undefined;
      const labels = request.digest === BLOB_DIGEST ? { 'containerd.io/distribution.source.r': 'app' } : {};
      return { info: { digest: request.digest, size: blob.length, labels } };
    }),
    List: (call: grpc.ServerWritableStream<unknown, unknown> & RawCall) => {
      seen(call);
      call.write({ info: [{ digest: BLOB_DIGEST, size: BLOB.length, labels: {} }] });
      call.write({ info: [{ digest: 'sha256:short', size: 1, labels: {} }] });
      call.end();
    },
    Read: async (
      call: grpc.ServerWritableStream<{ digest: string; offset: number; size: number }, unknown>,
    ) => {
      seen(call);
      state.readRequests.push({ ...call.request });
      const { offset, size } = call.request;
      const blob = BLOBS.get(call.request.digest)!;
      const end = size === 0 ? blob.length : offset + size;
      for (let at = offset; at < end && !call.cancelled; at += 65_536) {
        const skip = state.behaviour === 'gap' && at > offset ? 10 : 0;
        const data = blob.subarray(at + skip, Math.min(at + 65_536, end));
        state.written += data.length;
        // Like containerd's Send, wait while the client's flow-control window is full.
        if (!call.write({ offset: at - offset + skip, data }))
          await new Promise((resolve) => call.once('drain', resolve));
      }
      call.end();
    },
  });
  server.addService(pick('containerd.services.events.v1.Events'), {
    Subscribe: (call: grpc.ServerWritableStream<{ filters: string[] }, unknown>) => {
      seen(call);
      state.subscribeFilters.push(call.request.filters);
      for (const { topic, type_url, value } of state.envelopes) {
        call.write({ namespace: 'k8s.io', topic, event: { type_url, value } });
      }
      if (state.subscribeEnd === 'end') call.end();
      else if (state.subscribeEnd === 'unavailable') {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone' });
      }
    },
  });
  server.addService(pick('containerd.services.version.v1.Version'), {
    Version: unary(() => ({ version: '1.6.20~ds1', revision: 'abc' })),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
  return server;
}

describe('ContainerdStore against a fake containerd', () => {
  let dir: string;
  let server: grpc.Server;
  let state: FakeState;
  const stores: ContainerdStore[] = [];
  const open = (options: Partial<ContainerdStoreOptions> = {}): ContainerdStore => {
    const store = createContainerdStore({ socket: join(dir, 'fake.sock'), callTimeoutMs: 2000, ...options });
    stores.push(store);
    return store;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peili-containerd-store-'));
    state = {} as FakeState;
    server = await startFake(join(dir, 'fake.sock'), state);
  });
  beforeEach(() => {
    Object.assign(state, {
      behaviour: 'normal',
      namespaces: [],
      readRequests: [],
      written: 0,
      subscribeFilters: [],
      envelopes: [],
      subscribeEnd: 'end',
    } satisfies FakeState);
  });
  after(async () => {
    for (const store of stores) store.close();
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the namespace on every call and maps answers', async () => {
    const store = open({ namespace: 'custom' });
    assert.deepEqual(await store.containerdVersion(), { version: '1.6.20~ds1', revision: 'abc' });
    const image = {
      name: 'r/app:v1',
      target: { mediaType: TARGET.media_type, digest: BLOB_DIGEST, size: 300_000 },
    };
    assert.deepEqual(await store.listImages(), [image]);
    assert.deepEqual(await store.getImage('r/app:v1'), image);
    assert.equal(await store.getImage('r/absent:v1'), undefined);
    assert.deepEqual(await store.info(BLOB_DIGEST), {
      digest: BLOB_DIGEST,
      size: BLOB.length,
      labels: { 'containerd.io/distribution.source.r': 'app' },
    });
    assert.deepEqual(await store.listContent(), [{ digest: BLOB_DIGEST, size: BLOB.length, labels: {} }]);
    assert.deepEqual(state.namespaces, ['custom', 'custom', 'custom', 'custom', 'custom', 'custom']);
  });

  it('turns server errors into ContainerdError with the gRPC code', async () => {
    state.behaviour = 'internal';
    await assert.rejects(open().getImage('r/app:v1'), (error: unknown) => {
      assert.ok(error instanceof ContainerdError);
      assert.equal(error.message, 'containerd Images.Get: boom');
      assert.equal(error.code, grpc.status.INTERNAL);
      return true;
    });
  });

  it('gives up on a hanging unary call at its deadline', async () => {
    state.behaviour = 'hang';
    const started = Date.now();
    await assert.rejects(open({ callTimeoutMs: 200 }).listImages(), {
      name: 'ContainerdError',
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  });

  it('rejects a hanging call with the abort reason as soon as the signal aborts', async () => {
    state.behaviour = 'hang';
    const started = Date.now();
    await assert.rejects(open().info(BLOB_DIGEST, AbortSignal.timeout(100)), { name: 'TimeoutError' });
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  it('fails fast with UNAVAILABLE when nothing listens on the socket', async () => {
    const store = open({ socket: join(dir, 'absent.sock') });
    await assert.rejects(store.listImages(), { name: 'ContainerdError', code: grpc.status.UNAVAILABLE });
  });

  describe('read', () => {
    it('streams over Content.Read with offset and size when there is no content path', async () => {
      const vias: string[] = [];
      const store = open({ onRead: (via) => vias.push(via) });
      assert.ok((await collect((await store.read(BLOB_DIGEST))!)).equals(BLOB));
      const window = await store.read(BLOB_DIGEST, { offset: 100_000, length: 150_001 });
      assert.ok((await collect(window!)).equals(BLOB.subarray(100_000, 250_001)));
      assert.deepEqual(state.readRequests, [
        { digest: BLOB_DIGEST, offset: 0, size: BLOB.length },
        { digest: BLOB_DIGEST, offset: 100_000, size: 150_001 },
      ]);
      assert.deepEqual(vias, ['grpc', 'grpc']);
    });

    it('reads from disk when the blob file is there with the right size, else over gRPC', async () => {
      const contentPath = join(dir, 'content');
      const vias: string[] = [];
      const store = open({ contentPath, onRead: (via) => vias.push(via) });
      // No blobs directory yet: gRPC.
      assert.ok(
        (await collect((await store.read(BLOB_DIGEST, { offset: 5, length: 10 }))!)).equals(
          BLOB.subarray(5, 15),
        ),
      );
      await mkdir(join(contentPath, 'blobs', 'sha256'), { recursive: true });
      const file = join(contentPath, 'blobs', 'sha256', BLOB_DIGEST.slice('sha256:'.length));
      // A file of the wrong size (half-written or replaced) is not trusted: gRPC.
      await writeFile(file, BLOB.subarray(0, 10));
      assert.ok((await collect((await store.read(BLOB_DIGEST))!)).equals(BLOB));
      await writeFile(file, BLOB);
      assert.ok(
        (await collect((await store.read(BLOB_DIGEST, { offset: 299_990 }))!)).equals(BLOB.subarray(299_990)),
      );
      assert.deepEqual(vias, ['grpc', 'grpc', 'disk']);
      assert.equal(state.readRequests.length, 2);
    });

    it('does not touch disk or gRPC for blobs the namespace does not hold', async () => {
      const store = open({ contentPath: join(dir, 'content') });
      assert.equal(await store.read(`sha256:${'1'.repeat(64)}`), undefined);
      assert.deepEqual(state.readRequests, []);
    });

    it('fails the stream when Content.Read skips bytes', async () => {
      state.behaviour = 'gap';
      const stream = await open().read(BLOB_DIGEST);
      await assert.rejects(collect(stream!), {
        message: 'containerd Content.Read: chunk at offset 65546, expected 65536',
      });
    });

    it('holds back the server while the consumer does not read (backpressure)', async () => {
      const stream = (await open().read(BIG_DIGEST))!;
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Only windows and stream buffers fill up (a few MiB), not the 32 MiB blob.
      assert.ok(state.written < 8 * 1024 * 1024, `the fake wrote ${state.written} bytes`);
      assert.ok((await collect(stream)).equals(BIG));
      assert.equal(state.written, BIG.length);
    });

    it('cancels the gRPC call when the consumer destroys the stream', async () => {
      const stream = (await open().read(BLOB_DIGEST))!;
      const closed = new Promise((resolve) => stream.once('close', resolve));
      stream.destroy();
      await closed;
      assert.equal(stream.destroyed, true);
    });
  });

  describe('subscribe', () => {
    const encode = (name: string): Buffer =>
      Buffer.concat([Buffer.from([0x0a, name.length]), Buffer.from(name)]);

    it('yields decoded events, skips unknown and broken ones, and ends with the stream', async () => {
      state.envelopes = [
        {
          topic: '/images/create',
          type_url: 'containerd.services.images.v1.ImageCreate',
          value: encode('r/a:1'),
        },
        { topic: '/tasks/exit', type_url: 'containerd.events.TaskExit', value: encode('x') },
        {
          topic: '/images/update',
          type_url: 'containerd.services.images.v1.ImageUpdate',
          value: Buffer.from([0x0a, 9]),
        },
        {
          topic: '/images/delete',
          type_url: 'containerd.services.images.v1.ImageDelete',
          value: encode('r/a:1'),
        },
      ];
      const ends: (string | undefined)[] = [];
      const store = open({ onSubscriptionEnd: (error) => ends.push(error?.message) });
      const seen: StoreEvent[] = [];
      for await (const event of store.subscribe(AbortSignal.timeout(5000))) seen.push(event);
      assert.deepEqual(seen, [
        { kind: 'image-create', name: 'r/a:1' },
        { kind: 'image-delete', name: 'r/a:1' },
      ]);
      assert.deepEqual(ends, [
        'undecodable containerd.services.images.v1.ImageUpdate event on /images/update',
        undefined,
      ]);
      assert.deepEqual(state.subscribeFilters, [
        ['namespace==k8s.io,topic~="^/images/"', 'namespace==k8s.io,topic~="^/content/"'],
      ]);
    });

    it('ends (without throwing) when the stream fails, and says why', async () => {
      state.subscribeEnd = 'unavailable';
      const ends: (string | undefined)[] = [];
      const store = open({ onSubscriptionEnd: (error) => ends.push(error?.message) });
      const seen: StoreEvent[] = [];
      for await (const event of store.subscribe(AbortSignal.timeout(5000))) seen.push(event);
      assert.deepEqual(seen, []);
      assert.equal(ends.length, 1);
      assert.match(ends[0] ?? '', /^containerd Events\.Subscribe: /);
    });

    it('ends quietly on abort while the stream is open', async () => {
      state.subscribeEnd = 'hold';
      const ends: (Error | undefined)[] = [];
      const store = open({ onSubscriptionEnd: (error) => ends.push(error) });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const seen: StoreEvent[] = [];
      for await (const event of store.subscribe(controller.signal)) seen.push(event);
      assert.deepEqual(seen, []);
      assert.deepEqual(ends, []);
    });
  });
});

describe('findProtoDir', () => {
  const src = findProtoDir();
  it('finds the .proto files beside the source module', () => {
    assert.match(src, /mirror\/src\/containerd\/proto$/);
  });
  it('finds them from the compiled module under dist/', () => {
    const repo = src.replace(/\/mirror\/src\/containerd\/proto$/, '');
    const compiled = pathToFileURL(join(repo, 'dist/mirror/src/containerd/containerd-store.js')).href;
    assert.equal(findProtoDir(compiled), src);
  });
  it('names both places it looked when they are missing', () => {
    assert.throws(() => findProtoDir('file:///nowhere/a/b/c/d/containerd-store.js'), {
      message:
        'containerd .proto files not found in /nowhere/a/b/c/d/proto or /nowhere/mirror/src/containerd/proto',
    });
  });
});
