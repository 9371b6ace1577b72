// Peer authentication on the real test bed: two containerd nodes whose Peili daemons share a peer
// secret and resolve tags from peers. A rogue process on the network (not a daemon) tries to
// advertise itself as the holder of a tag, unsigned and with a forged signature: refused, and the
// nodes never ask it. The control case — the same advertisement signed with the cluster's secret —
// is accepted and the rogue IS asked, which shows the refusal is what keeps the tag clean.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { createPeerAuth } from '../mirror/src/peer-auth/peer-auth.js';
import { createScratchDir, waitFor } from '../testbed/index.js';
import { PEILI_PORTS, startPeiliCluster, type PeiliCluster } from './peili-cluster.js';

const SECRET = 'the cluster secret for this test bed';
const ROGUE_HOST = '127.0.48.9';
let dir: string;
let pc: PeiliCluster;
let rogue: Server;
let rogueUrl: string;
const rogueSeen: string[] = [];
// A well-formed manifest the rogue would like nodes to resolve the tag to.
const POISON = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: `sha256:${'e'.repeat(64)}`,
      size: 2,
    },
    layers: [],
  }),
);
const POISON_DIGEST = `sha256:${createHash('sha256').update(POISON).digest('hex')}`;

before(async () => {
  dir = await createScratchDir('e2e-security-peers');
  pc = await startPeiliCluster({
    nodes: 2,
    dir,
    registryHost: '127.0.48.1',
    nodeHosts: ['127.0.48.2', '127.0.48.3'],
    peerSecret: SECRET,
    registryArgs: ['--resolve-tags=always'],
  });
  rogue = createServer((req, res) => {
    rogueSeen.push(`${req.method} ${req.url}`);
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': POISON.length,
      'docker-content-digest': POISON_DIGEST,
    });
    res.end(req.method === 'HEAD' ? undefined : POISON);
  });
  await new Promise<void>((resolve) => rogue.listen(0, ROGUE_HOST, resolve));
  rogueUrl = `http://${ROGUE_HOST}:${(rogue.address() as { port: number }).port}`;
});

after(async () => {
  rogue?.closeAllConnections();
  rogue?.close();
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

const tagKey = (): string => `${pc.upstreamHost}/test/app:v1`;

/** POSTs an advertisement of the tag key for the rogue to every node's router; the statuses. */
async function advertise(sign?: (body: string, url: string) => Record<string, string>): Promise<number[]> {
  const url = '/peili/v1/advertise';
  const body = JSON.stringify({
    holder: { id: `${ROGUE_HOST}:5001`, registryUrl: rogueUrl },
    ttlSeconds: 600,
    keys: [tagKey()],
  });
  const statuses: number[] = [];
  for (const node of pc.nodes) {
    const response = await fetch(`http://${node.node.host}:${PEILI_PORTS.router}${url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sign ? sign(body, url) : {}) },
      body,
      signal: AbortSignal.timeout(5_000),
    });
    await response.body?.cancel();
    statuses.push(response.status);
  }
  return statuses;
}

/** HEAD of the tag at node 1's mirror, as its containerd would send it. */
async function headTag(): Promise<{ status: number; digest: string | null }> {
  const node = pc.nodes[0]!;
  const response = await fetch(
    `${node.mirrorUrl}/v2/test/app/manifests/v1?ns=${encodeURIComponent(pc.upstreamHost)}`,
    { method: 'HEAD', signal: AbortSignal.timeout(5_000) },
  );
  return { status: response.status, digest: response.headers.get('docker-content-digest') };
}

test('unsigned and forged advertisements are refused; the tag never resolves to the rogue', async () => {
  assert.deepEqual(await advertise(), [401, 401]);
  const forged = createPeerAuth('a different secret of enough bytes');
  assert.deepEqual(await advertise((body, url) => forged.sign({ method: 'POST', url, body })), [401, 401]);
  // Unsigned lookups are refused too (the index is not readable by non-daemons).
  const lookup = await fetch(
    `http://${pc.nodes[0]!.node.host}:${PEILI_PORTS.router}/peili/v1/lookup?key=${encodeURIComponent(tagKey())}`,
    { signal: AbortSignal.timeout(5_000) },
  );
  assert.equal(lookup.status, 401);
  for (let i = 0; i < 3; i++) assert.deepEqual(await headTag(), { status: 404, digest: null });
  assert.deepEqual(rogueSeen, []);
});

test('control: the same advertisement signed with the cluster secret is believed', async () => {
  const auth = createPeerAuth(SECRET);
  assert.deepEqual(await advertise((body, url) => auth.sign({ method: 'POST', url, body })), [200, 200]);
  await waitFor(async () => (await headTag()).digest === POISON_DIGEST, {
    timeoutMs: 10_000,
    intervalMs: 200,
    describe: () =>
      `node 1 never resolved the tag through the signed advertisement (rogue saw ${rogueSeen.length})`,
  });
  assert.ok(
    rogueSeen.some(
      (line) =>
        line.startsWith('HEAD /v2/test/app/manifests/v1') || line.startsWith('GET /v2/test/app/manifests/v1'),
    ),
  );
});
