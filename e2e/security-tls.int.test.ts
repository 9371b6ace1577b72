// Mutual TLS between peers on the real test bed: three containerd nodes whose daemons speak mutual
// TLS on their router ports. Nodes 1 and 2 hold the cluster's certificate (CA A); node 3 holds a
// certificate with the same peer name from another CA (B), like a pod that minted its own. Node 2
// pulls an image node 1 holds from node 1, over TLS; node 3 gets nothing from either (its pull goes
// upstream), and nobody gets content from the plain registry port or plain HTTP on the router port.
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { createTestCa, type TestCa, type TestCert } from '../mirror/test-support/test-ca.js';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  tailFile,
  type CriClient,
  type OciLayout,
} from '../testbed/index.js';
import {
  PEILI_PORTS,
  startPeiliCluster,
  sumMetric,
  waitUntilServed,
  type PeiliCluster,
} from './peili-cluster.js';

const NAME = 'peili-peer.e2e';
let dir: string;
let pc: PeiliCluster;
let ns: string;
let app: OciLayout;
let caA: TestCa;
let caB: TestCa;
let certA: TestCert;
const cri: CriClient[] = [];

const tlsArgs = (cert: TestCert, ca: TestCa): string[] => [
  `--peer-tls-cert-file=${cert.certFile}`,
  `--peer-tls-key-file=${cert.keyFile}`,
  `--peer-tls-ca-file=${ca.certFile}`,
  `--peer-tls-name=${NAME}`,
];

before(async () => {
  dir = await createScratchDir('e2e-security-tls');
  caA = await createTestCa(dir, 'cluster-ca');
  caB = await createTestCa(dir, 'other-ca');
  certA = await caA.issue('peer', [NAME]);
  const certB = await caB.issue('intruder', [NAME]);
  pc = await startPeiliCluster({
    nodes: 3,
    dir,
    registryHost: '127.0.50.1',
    nodeHosts: ['127.0.50.2', '127.0.50.3', '127.0.50.4'],
    nodeArgs: (i) => (i < 2 ? tlsArgs(certA, caA) : tlsArgs(certB, caB)),
  });
  ns = pc.upstreamHost;
  app = await buildImage(IMAGES.app);
  await pushImage(app, `${ns}/test/app:v1`);
  for (const node of pc.nodes) cri.push(createCriClient(node.node.socket));
});

after(async () => {
  for (const client of cri) client.close();
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

async function metric(i: number, name: string): Promise<number> {
  return sumMetric(await pc.nodes[i]!.metrics(), name);
}

/** GET over mutual TLS with the cluster certificate, as a peer would send it. */
function peerGet(host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host,
        port: PEILI_PORTS.router,
        path,
        agent: false,
        ca: caA.cert,
        cert: certA.cert,
        key: certA.key,
        servername: NAME,
        headers: { 'x-peili-mirrored': 'true' },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

const blobGets = (log: readonly string[]): string[] =>
  log.filter((line) => /"GET \/v2\/test\/app\/blobs\//.test(line));

test('node 2 pulls from node 1 over mutual TLS; the locations advertised are https on the router port', async (t) => {
  assert.equal(await cri[0]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
  const layers = app.images[0]!.layerDigests;
  await waitUntilServed(pc.nodes[1]!, { ns, repository: 'test/app', digests: layers });

  const node1 = pc.nodes[0]!.node.host;
  const lookup = await peerGet(
    pc.nodes[1]!.node.host,
    `/peili/v1/lookup?key=${encodeURIComponent(layers[0]!)}`,
  );
  assert.equal(lookup.status, 200, lookup.body);
  // With three members and three owners per key node 2 owns every key: node 1 is listed by its TLS URL.
  const holders = (JSON.parse(lookup.body) as { holders: Record<string, { registryUrl: string }[]> }).holders;
  assert.deepEqual(
    (holders[layers[0]!] ?? []).map((h) => h.registryUrl),
    [`https://${node1}:${PEILI_PORTS.router}`],
  );

  const fetchedBefore = await metric(1, 'peili_peer_fetched_bytes_total');
  const servedBefore = await metric(0, 'peili_peer_served_bytes_total');
  const logBefore = (await pc.cluster.registry.requestLog()).length;
  const started = performance.now();
  assert.equal(await cri[1]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
  const seconds = (performance.now() - started) / 1000;
  const upstreamBlobGets = blobGets((await pc.cluster.registry.requestLog()).slice(logBefore));
  const fetched = (await metric(1, 'peili_peer_fetched_bytes_total')) - fetchedBefore;
  const served = (await metric(0, 'peili_peer_served_bytes_total')) - servedBefore;
  assert.deepEqual(upstreamBlobGets, [], 'node 2 fetched no blob upstream');
  assert.ok(fetched > 0, `node 2 fetched ${fetched} bytes from peers`);
  assert.equal(served, fetched, 'node 1 served what node 2 fetched');
  t.diagnostic(`node 2 pulled in ${seconds.toFixed(2)} s, ${fetched} bytes from node 1 over mutual TLS`);
});

test('the plain registry port refuses peer (loop-guarded) requests; plain HTTP on the router port gets nothing', async () => {
  const layer = app.images[0]!.layerDigests[0]!;
  const node1 = pc.nodes[0]!;
  const url = `${node1.mirrorUrl}/v2/test/app/blobs/${layer}?ns=${encodeURIComponent(ns)}`;
  const guarded = await fetch(url, {
    headers: { 'x-peili-mirrored': 'true' },
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(guarded.status, 403);
  assert.deepEqual(await guarded.json(), {
    errors: [{ code: 'DENIED', message: 'peer requests are served only on the mutual-TLS peer port' }],
  });
  // The node's own containerd (no loop guard) is served on that port as before.
  const local = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
  assert.equal(local.status, 200);
  // The same content over TLS with the cluster certificate: served.
  assert.equal(
    (await peerGet(node1.node.host, `/v2/test/app/blobs/${layer}?ns=${encodeURIComponent(ns)}`)).status,
    200,
  );
  await assert.rejects(
    fetch(
      `http://${node1.node.host}:${PEILI_PORTS.router}/v2/test/app/blobs/${layer}?ns=${encodeURIComponent(ns)}`,
      {
        headers: { 'x-peili-mirrored': 'true' },
        signal: AbortSignal.timeout(5_000),
      },
    ),
  );
});

test('node 3, with a certificate of another CA, gets nothing from the cluster: its pull goes upstream', async () => {
  const servedBefore = [
    await metric(0, 'peili_peer_served_bytes_total'),
    await metric(1, 'peili_peer_served_bytes_total'),
  ];
  const logBefore = (await pc.cluster.registry.requestLog()).length;
  assert.equal(await cri[2]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
  const upstreamBlobGets = blobGets((await pc.cluster.registry.requestLog()).slice(logBefore));
  for (const digest of [...app.images[0]!.layerDigests, app.images[0]!.configDigest]) {
    assert.ok(
      upstreamBlobGets.some((line) => line.includes(digest)),
      `${digest} not fetched upstream:\n${upstreamBlobGets.join('\n')}`,
    );
  }
  assert.equal(await metric(2, 'peili_peer_fetched_bytes_total'), 0);
  assert.deepEqual(
    [await metric(0, 'peili_peer_served_bytes_total'), await metric(1, 'peili_peer_served_bytes_total')],
    servedBefore,
  );
  // The cluster's daemons refused its handshakes (its certificate is not from their CA).
  const log = await tailFile(pc.nodes[0]!.logPath, 200_000);
  assert.match(log, /peer connection refused: TLS handshake failed/);
});
