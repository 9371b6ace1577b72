// How fast a blob leaves containerd's content store: direct file reads vs gRPC Content.Read.
// Both must give the blob's exact bytes; the MB/s figures are printed as test diagnostics.
// The layer is 32 MiB by default (keeps `npm test` lean); PEILI_READ_BENCH_MIB=200 measures the
// benchmark size.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  buildImage,
  createScratchDir,
  pushImage,
  sizedImage,
  startContainerd,
  startRegistry,
  type ContainerdNode,
  type RegistryProcess,
} from '../../../testbed/index.js';
import type { Digest } from '../store/content-store.js';
import { createContainerdStore, type ContainerdStore } from './containerd-store.js';

// This file's share of the 127.0.2.0/24 range of the containerd adapter's tests.
const REGISTRY_HOST = '127.0.2.3';
const NODE_HOST = '127.0.2.4';
const MIB = Number(process.env.PEILI_READ_BENCH_MIB ?? '32');

async function hashStream(stream: Readable): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

async function countStream(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) bytes += chunk.length;
  return bytes;
}

describe(`reading a ${MIB} MiB blob from containerd`, { timeout: 300_000 }, () => {
  let dir: string;
  let registry: RegistryProcess;
  let node: ContainerdNode;
  let layer: { digest: Digest; size: number };
  const stores: ContainerdStore[] = [];

  before(async () => {
    assert.ok(
      Number.isInteger(MIB) && MIB > 0,
      `PEILI_READ_BENCH_MIB must be a whole number > 0, got ${MIB}`,
    );
    const layout = await buildImage(sizedImage(MIB, 1));
    dir = await createScratchDir('containerd-read');
    registry = await startRegistry({ dir: join(dir, 'registry'), host: REGISTRY_HOST });
    node = await startContainerd({ dir, name: 'node1', host: NODE_HOST });
    const ref = `${registry.hostPort}/bench/sized:v1`;
    await pushImage(layout, ref);
    await node.ctr(['images', 'pull', '--plain-http', ref]);
    const digest = layout.images[0]!.layerDigests[0]! as Digest;
    layer = { digest, size: layout.blobs.find((b) => b.digest === digest)!.size };
  });
  after(async () => {
    for (const store of stores) store.close();
    await node?.stop();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const via of ['disk', 'grpc'] as const) {
    it(`via ${via}: exact bytes, and the throughput`, async (t) => {
      const vias: string[] = [];
      const store = createContainerdStore({
        socket: node.socket,
        ...(via === 'disk' ? { contentPath: node.contentPath } : {}),
        onRead: (used) => vias.push(used),
      });
      stores.push(store);
      // One verified read, then timed reads that only count bytes (hashing would dominate the figure).
      assert.deepEqual(await hashStream((await store.read(layer.digest))!), {
        digest: layer.digest,
        bytes: layer.size,
      });
      let best = Infinity;
      for (let round = 0; round < 3; round++) {
        const started = process.hrtime.bigint();
        const bytes = await countStream((await store.read(layer.digest))!);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        assert.equal(bytes, layer.size);
        best = Math.min(best, seconds);
      }
      assert.deepEqual(vias, [via, via, via, via]);
      t.diagnostic(
        `${via}: ${(layer.size / 1e6).toFixed(1)} MB in ${(best * 1000).toFixed(0)} ms (best of 3) = ${(layer.size / 1e6 / best).toFixed(0)} MB/s`,
      );
    });
  }
});
