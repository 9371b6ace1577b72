// What containerd 2.x does with a mirror, measured on real daemons of each runtime the question
// applies to (not only the one PEILI_CONTAINERD selects), each answer an assertion:
// 1. A node configured as stock Talos (00-base.part: discard_unpacked_layers = true) holds no layer
//    blobs once its garbage collector has run, so its Peili serves peers manifests and configs
//    only; with the CRI part infra/ renders for Talos (20-customization.part), every layer stays
//    and is served.
// 2. A CRI pull through the transfer service (use_local_image_pull = false, the default outside
//    Talos) still uses the hosts.toml mirror when config_path is one folder.
// 3. kubelet's pull-secret credentials (CRI AuthConfig with the registry's server address) are never
//    sent to a mirror host, even one that challenges for them; they are sent to the registry they
//    are for (the control). An AuthConfig without a server address goes to any challenging host.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { criCustomizationToml } from '../infra/talos-patch.js';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  parsePins,
  pushImage,
  REPO_ROOT,
  runtimeFor,
  startContainerd,
  startRegistry,
  upstreamHostsToml,
  waitFor,
  writeHostsToml,
  type CriClient,
  type CriPart,
  type OciLayout,
  type RuntimeName,
} from '../testbed/index.js';
import { readFileSync } from 'node:fs';
import { startPeiliCluster, sumMetric, type PeiliCluster } from './peili-cluster.js';

const PINS = parsePins(readFileSync(join(REPO_ROOT, 'scripts', 'pins.env'), 'utf8'));
const LOOP_GUARD = { 'x-peili-mirrored': 'true' };

/** The part Peili's Pulumi program writes to every Talos node. */
function peiliTalosPart(): CriPart {
  return { name: '20-customization.part', toml: criCustomizationToml() };
}

/** The non-Talos default: CRI pulls through the transfer service, layers kept. */
const TRANSFER_SERVICE_PART: CriPart = {
  name: '20-customization.part',
  toml: [
    '[plugins."io.containerd.cri.v1.images"]',
    '  discard_unpacked_layers = false',
    '  use_local_image_pull = false',
    '',
  ].join('\n'),
};

async function heldBlobs(cluster: PeiliCluster, index: number): Promise<Set<string>> {
  const { stdout } = await cluster.nodes[index]!.node.ctr(['content', 'ls', '-q']);
  return new Set(stdout.split('\n').filter((line) => line.startsWith('sha256:')));
}

// Each 2.x runtime gets its own /24: 127.0.61.x for 2.2, 127.0.62.x for 2.1.
const TALOS_RUNTIMES: readonly [RuntimeName, number][] = [
  ['2.2', 61],
  ['2.1', 62],
];

for (const [name, net] of TALOS_RUNTIMES) {
  describe(`containerd ${name} configured as Talos configures it`, { timeout: 300_000 }, () => {
    let dir: string;
    let pc: PeiliCluster;
    let app: OciLayout;
    let ns: string;
    const cri: CriClient[] = [];
    const runtime = runtimeFor(name, PINS);

    before(async () => {
      dir = await createScratchDir(`e2e-rt${name}`);
      pc = await startPeiliCluster({
        nodes: 3,
        dir,
        registryHost: `127.0.${net}.1`,
        nodeHosts: [`127.0.${net}.2`, `127.0.${net}.3`, `127.0.${net}.4`],
        containerd: (i) => ({
          runtime,
          // node1: stock Talos; node2: Talos with Peili's part; node3: the transfer-service default.
          criParts: [[], [peiliTalosPart()], [TRANSFER_SERVICE_PART]][i]!,
        }),
      });
      ns = pc.upstreamHost;
      app = await buildImage(IMAGES.app);
      await pushImage(app, `${ns}/test/app:v1`);
      for (const node of pc.nodes) cri.push(createCriClient(node.node.socket));
    });

    after(async () => {
      for (const client of cri) client.close();
      await pc?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it(`runs ${name}, with each node's CRI config merged from Talos's parts`, async () => {
      const version = (await cri[0]!.version()).runtimeVersion;
      assert.ok(version.startsWith(runtime.version.replace(/[+~].*$/, '')), version);
    });

    it('stock Talos discards the layers once its GC runs; with the Peili part every layer is served', async () => {
      const image = app.images[0]!;
      // Both pull from the upstream, one after the other (node 2 first, so node 1 may use it).
      assert.equal(await cri[1]!.pullImage(`${ns}/test/app:v1`), image.configDigest);
      assert.equal(await cri[0]!.pullImage(`${ns}/test/app:v1`), image.configDigest);
      // The image is there on both nodes ...
      for (const client of cri.slice(0, 2)) {
        assert.equal((await client.imageStatus(`${ns}/test/app:v1`))?.id, image.configDigest);
      }
      // ... but on stock Talos the layers go as soon as the garbage collector runs after the pull.
      await waitFor(
        async () => {
          const held = await heldBlobs(pc, 0);
          return image.layerDigests.every((digest) => !held.has(digest));
        },
        {
          timeoutMs: 60_000,
          intervalMs: 100,
          describe: () => 'node1 (stock Talos) still holds layers 60 s after the pull',
        },
      );
      const stock = await heldBlobs(pc, 0);
      const withPart = await heldBlobs(pc, 1);
      assert.deepEqual(
        image.layerDigests.filter((digest) => stock.has(digest)),
        [],
        'stock Talos keeps no layer',
      );
      assert.deepEqual(
        image.layerDigests.filter((digest) => !withPart.has(digest)),
        [],
        'the Peili part keeps every layer',
      );
      // What each node's Peili serves a peer (loop-guarded: local content only).
      const served = async (index: number, digest: string, kind: 'blobs' | 'manifests'): Promise<number> =>
        (
          await fetch(
            `${pc.nodes[index]!.mirrorUrl}/v2/test/app/${kind}/${digest}?ns=${encodeURIComponent(ns)}`,
            {
              method: 'HEAD',
              headers: LOOP_GUARD,
            },
          )
        ).status;
      for (const [index, layerStatus] of [
        [0, 404],
        [1, 200],
      ] as const) {
        assert.equal(await served(index, app.manifestDigests[0]!, 'manifests'), 200);
        assert.equal(await served(index, image.configDigest, 'blobs'), 200);
        for (const digest of image.layerDigests) {
          assert.equal(await served(index, digest, 'blobs'), layerStatus, `node${index + 1} layer ${digest}`);
        }
      }
    });

    it('a CRI pull through the transfer service (use_local_image_pull = false) uses the hosts.toml mirror', async () => {
      const before = sumMetric(await pc.nodes[2]!.metrics(), 'peili_mirror_requests_total');
      const fromPeersBefore = sumMetric(await pc.nodes[2]!.metrics(), 'peili_peer_fetched_bytes_total');
      assert.equal(await cri[2]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
      const metrics = await pc.nodes[2]!.metrics();
      assert.ok(sumMetric(metrics, 'peili_mirror_requests_total') > before, 'the mirror saw no request');
      // Node 2 holds every blob: the layers came from it through node 3's mirror.
      assert.ok(
        sumMetric(metrics, 'peili_peer_fetched_bytes_total') > fromPeersBefore,
        'nothing came from peers',
      );
    });
  });
}

/** A mirror that records request headers and challenges for Basic credentials, serving nothing. */
async function startChallengingMirror(
  host: string,
): Promise<{ server: Server; url: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="mirror"', 'content-type': 'application/json' });
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
    }
    res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"UNAUTHORIZED","message":"mirror"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, url: `http://${host}:${(server.address() as AddressInfo).port}`, seen };
}

const CREDENTIAL_RUNTIMES: readonly [RuntimeName, number][] = [
  ['2.2', 1],
  ['2.1', 2],
  ['1.6', 3],
];

describe('kubelet pull-secret credentials and mirrors', { timeout: 300_000 }, () => {
  for (const [name, octet] of CREDENTIAL_RUNTIMES) {
    it(`containerd ${name}: a pull secret's credentials never reach the mirror, only the registry they are for`, async () => {
      const host = `127.0.63.${octet * 10}`;
      const dir = await createScratchDir(`e2e-cred${name}`);
      const registry = await startRegistry({ dir: join(dir, 'registry'), host });
      const mirror = await startChallengingMirror(`127.0.63.${octet * 10 + 1}`);
      const node = await startContainerd({
        dir,
        name: 'n1',
        host: `127.0.63.${octet * 10 + 2}`,
        runtime: runtimeFor(name, PINS),
      });
      const client = createCriClient(node.socket);
      try {
        const app = await buildImage(IMAGES.app);
        await pushImage(app, `${registry.hostPort}/test/app:v1`);
        await pushImage(app, `${registry.hostPort}/test/app:v2`);
        await writeHostsToml(
          node.registryConfigPath,
          registry.hostPort,
          upstreamHostsToml(registry.url, [{ url: mirror.url }]),
        );
        const secret = { username: 'pull-secret-user', password: 'pull-secret-password' };
        const basic = `Basic ${Buffer.from(`${secret.username}:${secret.password}`).toString('base64')}`;
        const credentialsSeen = (): number =>
          mirror.seen.filter((headers) => headers.authorization !== undefined).length;
        // As kubelet passes a pull secret: with the registry it is for as the server address.
        const auth = { ...secret, serverAddress: registry.url };
        assert.equal(
          await client.pullImage(`${registry.hostPort}/test/app:v1`, undefined, auth),
          app.images[0]!.configDigest,
        );
        assert.ok(mirror.seen.length > 0, 'the mirror was never asked');
        assert.equal(credentialsSeen(), 0, 'credentials for the registry reached the mirror');
        // Without a server address (not what kubelet sends), containerd hands the credentials to any
        // host that challenges for them, the mirror included.
        mirror.seen.length = 0;
        assert.equal(
          await client.pullImage(`${registry.hostPort}/test/app:v2`, undefined, secret),
          app.images[0]!.configDigest,
        );
        assert.ok(
          mirror.seen.some((headers) => headers.authorization === basic),
          `no server address: the mirror got ${JSON.stringify(mirror.seen)}`,
        );
        // Control: the recorder sees credentials when containerd sends them to the host they are for.
        mirror.seen.length = 0;
        const mirrorHost = new URL(mirror.url).host;
        await writeHostsToml(node.registryConfigPath, mirrorHost, upstreamHostsToml(mirror.url));
        await assert.rejects(
          client.pullImage(`${mirrorHost}/test/app:v1`, undefined, { ...secret, serverAddress: mirror.url }),
        );
        assert.ok(
          mirror.seen.some((headers) => headers.authorization === basic),
          `the registry host itself got no credentials: ${JSON.stringify(mirror.seen)}`,
        );
      } finally {
        client.close();
        await node.stop();
        await registry.stop();
        await new Promise((resolve) => mirror.server.close(resolve));
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
