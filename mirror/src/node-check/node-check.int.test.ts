// The node check on real containerd (the test bed): a node configured like stock Talos
// (discard_unpacked_layers = true, so its layers are gone after the pull) reports `discarded`; a
// node with no mirror config reports `not-configured` once an image is pulled past the mirror; a
// node whose hosts.toml points at the mirror and that keeps layers reports `configured` / `kept`.
// The "mirror" is a plain HTTP server counting containerd's requests and answering 404, so
// containerd falls back to the registry: exactly what the daemon's request counter sees.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  IMAGES,
  buildImage,
  createCriClient,
  createScratchDir,
  pushImage,
  startContainerd,
  startRegistry,
  upstreamHostsToml,
  writeHostsToml,
  type ContainerdNode,
  type RegistryProcess,
} from '../../../testbed/index.js';
import { createContainerdStore, type ContainerdStore } from '../containerd/containerd-store.js';
import { createNodeCheck } from './node-check.js';

// This file's addresses (127.0.60.0/24).
const REGISTRY_HOST = '127.0.60.1';
const MIRROR_HOST = '127.0.60.2';
const STOCK_HOST = '127.0.60.3';
const PEILI_HOST = '127.0.60.4';

interface CountingMirror {
  readonly url: string;
  count(): number;
  close(): Promise<void>;
}

async function startCountingMirror(host: string): Promise<CountingMirror> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests += 1;
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://${host}:${address.port}`,
    count: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Turns a node into stock Talos's CRI behaviour: unpacked layers are discarded. containerd 2.x
 * nodes already are (started with Talos's parts only); a 1.x node's config is flipped.
 */
async function discardLayers(node: ContainerdNode): Promise<void> {
  if (node.runtime.major === 2) return;
  const config = await readFile(node.configPath, 'utf8');
  const patched = config.replace('discard_unpacked_layers = false', 'discard_unpacked_layers = true');
  assert.notEqual(patched, config, 'the node config sets discard_unpacked_layers');
  await node.stop();
  await writeFile(node.configPath, patched);
  await node.start();
}

/** Runs containerd's garbage collector now (a synchronous image delete triggers it). */
async function collectGarbage(node: ContainerdNode, image: string): Promise<void> {
  await node.ctr(['images', 'tag', image, `${image}-gc-trigger`]);
  await node.ctr(['images', 'rm', '--sync', `${image}-gc-trigger`]);
}

describe('node check on real containerd', () => {
  let registry: RegistryProcess;
  let mirror: CountingMirror;
  const nodes: ContainerdNode[] = [];
  const stores: ContainerdStore[] = [];
  let image: string;

  before(async () => {
    const app = await buildImage(IMAGES.app);
    const dir = await createScratchDir('node-check');
    registry = await startRegistry({ dir: join(dir, 'registry'), host: REGISTRY_HOST });
    image = `${registry.hostPort}/test/app:v1`;
    await pushImage(app, image);
    mirror = await startCountingMirror(MIRROR_HOST);
    for (const [name, host] of [
      ['stock', STOCK_HOST],
      ['peili', PEILI_HOST],
    ] as const) {
      // containerd 2.x: the stock node gets Talos's own CRI parts only (no part keeping layers).
      nodes.push(await startContainerd({ dir, name, host, ...(name === 'stock' ? { criParts: [] } : {}) }));
    }
  });

  after(async () => {
    for (const s of stores) s.close();
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await mirror?.close();
    await registry?.stop();
  });

  function storeOf(node: ContainerdNode): ContainerdStore {
    const store = createContainerdStore({
      socket: node.socket,
      namespace: 'k8s.io',
      contentPath: node.contentPath,
    });
    stores.push(store);
    return store;
  }

  it('a node like stock Talos, with no mirror config, reports layers discarded and the mirror not configured', async () => {
    const node = nodes[0] as ContainerdNode;
    await discardLayers(node);
    const store = storeOf(node);
    const check = createNodeCheck({ store, runtime: store, requestsSeen: () => mirror.count() });
    const first = await check.check();
    assert.deepEqual([first.mirror, first.layers], ['unknown', 'unknown'], 'nothing pulled yet');
    assert.match(first.runtime, /^containerd \d+\.\d+/);

    const before = mirror.count();
    const cri = createCriClient(node.socket, { timeoutMs: 60_000 });
    try {
      await cri.pullImage(image);
    } finally {
      cri.close();
    }
    await collectGarbage(node, image);
    const report = await check.check();
    assert.equal(mirror.count(), before, 'containerd never asked the mirror');
    assert.equal(report.mirror, 'not-configured');
    assert.equal(report.pulledSinceStart, 1);
    assert.equal(report.layers, 'discarded');
    assert.equal(report.images.complete, 0);
    assert.ok(report.images.withoutLayers >= 1, JSON.stringify(report));
  });

  it('a node pointed at the mirror that keeps layers reports configured and kept', async () => {
    const node = nodes[1] as ContainerdNode;
    await writeHostsToml(
      node.registryConfigPath,
      registry.hostPort,
      upstreamHostsToml(`http://${registry.hostPort}`, [{ url: mirror.url }]),
    );
    const store = storeOf(node);
    const before = mirror.count();
    const check = createNodeCheck({ store, runtime: store, requestsSeen: () => mirror.count() - before });
    await check.check();
    const cri = createCriClient(node.socket, { timeoutMs: 60_000 });
    try {
      await cri.pullImage(image);
    } finally {
      cri.close();
    }
    await collectGarbage(node, image);
    const report = await check.check();
    assert.ok(report.requestsSeen > 0, 'containerd asked the mirror first');
    assert.equal(report.mirror, 'configured');
    assert.equal(report.layers, 'kept');
    assert.equal(report.images.complete, 1);
  });
});
