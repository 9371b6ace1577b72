// ContainerdStore on a real containerd 1.6 (the test bed): the shared conformance suite, plus what
// only a real daemon shows: disk and gRPC reads agree, namespaces are kept apart, content events.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  IMAGES,
  buildImage,
  createCriClient,
  createScratchDir,
  pushImage,
  startContainerd,
  startRegistry,
  type ContainerdNode,
  type OciLayout,
  type RegistryProcess,
} from '../../../testbed/index.js';
import type { Digest, StoreEvent } from '../store/content-store.js';
import { collect, runContentStoreConformance } from '../../test-support/content-store-conformance.js';
import type { ConformanceBlob, ConformanceFixture } from '../../test-support/content-store-conformance.js';
import {
  createContainerdStore,
  type ContainerdStore,
  type ContainerdStoreOptions,
} from './containerd-store.js';

// This file's share of the 127.0.2.0/24 range of the containerd adapter's tests.
const REGISTRY_HOST = '127.0.2.1';
const NODE_HOST = '127.0.2.2';

interface Bed {
  dir: string;
  registry: RegistryProcess;
  node: ContainerdNode;
  app: OciLayout;
  multi: OciLayout;
  /** `127.0.2.1:<port>/test/app` */
  repo: string;
}

let bedPromise: Promise<Bed> | undefined;
const stores: ContainerdStore[] = [];

/** Starts the registry and one containerd once for the whole file, and CRI-pulls the app image. */
function bed(): Promise<Bed> {
  bedPromise ??= (async () => {
    const [app, multi] = await Promise.all([buildImage(IMAGES.app), buildImage(IMAGES.multi)]);
    const dir = await createScratchDir('containerd-store');
    const registry = await startRegistry({ dir: join(dir, 'registry'), host: REGISTRY_HOST });
    const node = await startContainerd({ dir, name: 'node1', host: NODE_HOST });
    const repo = `${registry.hostPort}/test/app`;
    await pushImage(app, `${repo}:v1`);
    await pushImage(multi, `${registry.hostPort}/test/multi:v1`);
    // CRI's pull, as the kubelet's, leaves the three names: repo:tag, repo@digest and sha256:<config>.
    const cri = createCriClient(node.socket, { timeoutMs: 60_000 });
    try {
      await cri.pullImage(`${repo}:v1`);
    } finally {
      cri.close();
    }
    return { dir, registry, node, app, multi, repo };
  })();
  return bedPromise;
}

function open(node: ContainerdNode, options: Partial<ContainerdStoreOptions> = {}): ContainerdStore {
  const store = createContainerdStore({ socket: node.socket, namespace: 'k8s.io', ...options });
  stores.push(store);
  return store;
}

async function layoutBlob(layout: OciLayout, digest: string): Promise<Buffer> {
  return readFile(join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** The fixture blobs with the labels a registry pull must have left (checked independently of the store). */
async function expectedBlobs(b: Bed): Promise<ConformanceBlob[]> {
  const image = b.app.images[0]!;
  const source = { [`containerd.io/distribution.source.${REGISTRY_HOST}`]: 'test/app' };
  const manifestLabels: Record<string, string> = {
    ...source,
    'containerd.io/gc.ref.content.config': image.configDigest,
  };
  image.layerDigests.forEach((digest, i) => (manifestLabels[`containerd.io/gc.ref.content.l.${i}`] = digest));
  const blobs: ConformanceBlob[] = [
    {
      digest: image.manifestDigest as Digest,
      bytes: await layoutBlob(b.app, image.manifestDigest),
      labels: manifestLabels,
    },
    {
      digest: image.configDigest as Digest,
      bytes: await layoutBlob(b.app, image.configDigest),
      labels: source,
    },
  ];
  for (const digest of image.layerDigests) {
    const bytes = await layoutBlob(b.app, digest);
    // containerd records the digest of the uncompressed tar: computed here from the bytes themselves.
    const uncompressed = `sha256:${createHash('sha256').update(gunzipSync(bytes)).digest('hex')}`;
    blobs.push({
      digest: digest as Digest,
      bytes,
      labels: { ...source, 'containerd.io/uncompressed': uncompressed },
    });
  }
  return blobs;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function fixtureFor(b: Bed, store: ContainerdStore, blobs: ConformanceBlob[]): ConformanceFixture {
  const image = b.app.images[0]!;
  return {
    image: {
      name: `${b.repo}:v1`,
      digestName: `${b.repo}@${image.manifestDigest}`,
      idName: image.configDigest,
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: image.manifestDigest as Digest,
        size: image.manifestSize,
      },
    },
    blobs,
    createImage: async (name, signal) =>
      void (await b.node.ctr(['images', 'tag', `${b.repo}:v1`, name], { signal })),
    deleteImage: async (name, signal) => void (await b.node.ctr(['images', 'rm', name], { signal })),
    restart: async (signal) => {
      await b.node.stop();
      await b.node.start();
      signal.throwIfAborted();
      await waitUntil(
        'the store to answer after the restart',
        async () => (await store.listImages()).length > 0,
      );
    },
  };
}

after(async () => {
  for (const store of stores) store.close();
  if (!bedPromise) return;
  const b = await bedPromise.catch(() => undefined);
  if (!b) return;
  await b.node.stop();
  await b.registry.stop();
  await rm(b.dir, { recursive: true, force: true });
});

runContentStoreConformance('ContainerdStore, content read from disk', async () => {
  const b = await bed();
  const store = open(b.node, { contentPath: b.node.contentPath });
  return { store, fixture: fixtureFor(b, store, await expectedBlobs(b)) };
});

runContentStoreConformance('ContainerdStore, content read over gRPC', async () => {
  const b = await bed();
  const vias = new Set<string>();
  const store = open(b.node, { onRead: (via) => vias.add(via) });
  return {
    store,
    fixture: fixtureFor(b, store, await expectedBlobs(b)),
    teardown: async () => assert.deepEqual([...vias], ['grpc']),
  };
});

describe('ContainerdStore on a real containerd', { timeout: 120_000 }, () => {
  let b: Bed;
  before(async () => {
    b = await bed();
  });

  it('reads the same bytes from disk and over gRPC, whole and in ranges', async () => {
    const viaDisk: string[] = [];
    const viaGrpc: string[] = [];
    const disk = open(b.node, { contentPath: b.node.contentPath, onRead: (via) => viaDisk.push(via) });
    const grpc = open(b.node, { onRead: (via) => viaGrpc.push(via) });
    for (const blob of b.app.blobs) {
      const digest = blob.digest as Digest;
      const fromLayout = await layoutBlob(b.app, digest);
      for (const range of [
        undefined,
        { offset: 1, length: blob.size - 2 },
        { offset: Math.floor(blob.size / 2) },
      ]) {
        const a = await collect((await disk.read(digest, range))!);
        const g = await collect((await grpc.read(digest, range))!);
        assert.ok(a.equals(g), `${digest} ${JSON.stringify(range)}: disk and gRPC differ`);
        const start = range?.offset ?? 0;
        const end = range?.length === undefined ? blob.size : start + range.length;
        assert.ok(
          a.equals(fromLayout.subarray(start, end)),
          `${digest} ${JSON.stringify(range)}: not the layout's bytes`,
        );
      }
    }
    assert.deepEqual(new Set(viaDisk), new Set(['disk']));
    assert.deepEqual(new Set(viaGrpc), new Set(['grpc']));
  });

  it('reports the daemon version containerd --version prints', async () => {
    const { stdout } = await b.node.ctr(['version']);
    // A `go install` build reports an empty revision.
    const server = /Server:\s+Version:\s+(\S+)\s+Revision:[ \t]*(\S*)/.exec(stdout);
    assert.ok(server, stdout);
    assert.deepEqual(await open(b.node).containerdVersion(), { version: server[1], revision: server[2] });
  });

  it('keeps namespaces apart, even for blobs whose files are on disk', async () => {
    const other = open(b.node, { namespace: 'peili-other', contentPath: b.node.contentPath });
    const layer = b.app.images[0]!.layerDigests[0] as Digest;
    assert.deepEqual(
      (await other.listImages()).filter((i) => i.name.includes('test/app') || i.name.startsWith('sha256:')),
      [],
    );
    assert.equal(await other.getImage(`${b.repo}:v1`), undefined);
    assert.equal(await other.info(layer), undefined);
    assert.equal(await other.read(layer), undefined);
    assert.equal((await other.listContent()).length, 0);
  });

  it('sees content-delete and image events of its namespace only', async () => {
    const store = open(b.node, { contentPath: b.node.contentPath });
    const controller = new AbortController();
    const seen: StoreEvent[] = [];
    const consumer = (async () => {
      for await (const event of store.subscribe(controller.signal)) seen.push(event);
    })();
    try {
      const multiRef = `${b.registry.hostPort}/test/multi:v1`;
      const gone = b.multi.images[0]!.layerDigests[0]!;
      // Subscription is live once our own probe tag shows up (a gRPC stream gives no other sign).
      let probes = 0;
      await waitUntil('the subscription to deliver a probe event', async () => {
        const probe = `${b.repo}:probe-${probes++}`;
        await b.node.ctr(['images', 'tag', `${b.repo}:v1`, probe]);
        await b.node.ctr(['images', 'rm', probe]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return seen.some((e) => e.kind === 'image-delete' && e.name === probe);
      });
      seen.length = 0;
      await b.node.ctr(['images', 'pull', '--plain-http', multiRef], { namespace: 'peili-other' });
      await b.node.ctr(['images', 'pull', '--plain-http', multiRef]);
      await b.node.ctr(['content', 'rm', gone]);
      await waitUntil('the content-delete event', async () => seen.some((e) => e.kind === 'content-delete'));
      const multiEvents = seen.filter(
        (e) => ('name' in e && e.name === multiRef) || e.kind.startsWith('content'),
      );
      // ctr pull creates the record, then updates it once the content is in; the pull in the other
      // namespace is not seen (one image-create only). containerd 2.1+ also publishes a
      // content-create per blob it writes, in whatever order the pull's fetches finish.
      const imageEvents = multiEvents.filter((e) => 'name' in e);
      assert.deepEqual(imageEvents[0], { kind: 'image-create', name: multiRef });
      assert.ok(
        imageEvents.slice(1).every((e) => e.kind === 'image-update'),
        JSON.stringify(multiEvents),
      );
      const layoutDigests = new Set(b.multi.blobs.map((blob) => blob.digest));
      const created = multiEvents.flatMap((e) => (e.kind === 'content-create' ? [e.digest] : []));
      assert.ok(
        created.every((digest) => layoutDigests.has(digest)),
        `content-create of a blob not in the image: ${JSON.stringify(multiEvents)}`,
      );
      if (b.node.runtime.major === 2) {
        for (const digest of b.multi.images[0]!.layerDigests) {
          assert.ok(
            created.includes(digest as Digest),
            `no content-create for layer ${digest}: ${JSON.stringify(multiEvents)}`,
          );
        }
      } else {
        assert.deepEqual(created, [], 'containerd 1.x publishes no content-create');
      }
      assert.deepEqual(multiEvents.at(-1), { kind: 'content-delete', digest: gone });
      assert.equal(await store.info(gone as Digest), undefined);
      assert.equal(await store.read(gone as Digest), undefined);
    } finally {
      controller.abort();
      await consumer;
    }
  });
});
