// Three real containerd nodes with Peili daemons and a real upstream registry: a moved tag is seen
// at once while the upstream is up; once it is STOPPED, nodes 2 and 3 still pull every image (by
// tag and by digest) from node 1; and a peer killed in the middle of the 200 MiB blob does not
// break the pull, which resumes from the other holder. One cluster, scenarios in order.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  sizedImage,
  type CriClient,
  type OciLayout,
} from '../testbed/index.js';
import {
  startPeiliCluster,
  sumMetric,
  waitUntilServed,
  type PeiliCluster,
  type PeiliNode,
} from './peili-cluster.js';

let dir: string;
let pc: PeiliCluster;
let ns: string;
let app: OciLayout;
let multi: OciLayout;
let big: OciLayout;
const cri: CriClient[] = [];

before(async () => {
  dir = await createScratchDir('e2e-p2p');
  pc = await startPeiliCluster({
    nodes: 3,
    dir,
    registryHost: '127.0.12.1',
    nodeHosts: ['127.0.12.2', '127.0.12.3', '127.0.12.4'],
  });
  ns = pc.upstreamHost;
  [app, multi, big] = await Promise.all([
    buildImage(IMAGES.app),
    buildImage(IMAGES.multi),
    buildImage(IMAGES.big),
  ]);
  await pushImage(app, `${ns}/test/app:v1`);
  await pushImage(multi, `${ns}/test/multi:v1`);
  await pushImage(big, `${ns}/test/big:v1`);
  for (const node of pc.nodes) cri.push(createCriClient(node.node.socket));
});

after(async () => {
  for (const client of cri) client.close();
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

function node(i: number): PeiliNode {
  return pc.nodes[i]!;
}

async function metric(i: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(await node(i).metrics(), name, labels);
}

test('upstream up: a tag moved upstream is seen at once on another node', async () => {
  const [first, second] = await Promise.all([
    buildImage(sizedImage(1, 1, { tag: 'v1' })),
    buildImage(sizedImage(1, 2, { tag: 'v1' })),
  ]);
  await pushImage(first, `${ns}/test/moving:v1`);
  assert.equal(await cri[0]!.pullImage(`${ns}/test/moving:v1`), first.images[0]!.configDigest);
  // Node 1 advertises the tag; the peers can see it before the tag moves.
  await waitUntilServed(node(2), {
    ns,
    repository: 'test/moving',
    digests: [first.topDigest],
    kind: 'manifests',
  });
  await pushImage(second, `${ns}/test/moving:v1`);
  const logBefore = (await pc.cluster.registry.requestLog()).length;
  assert.equal(await cri[2]!.pullImage(`${ns}/test/moving:v1`), second.images[0]!.configDigest);
  const log = (await pc.cluster.registry.requestLog()).slice(logBefore);
  assert.ok(
    log.some((line) => line.includes('"HEAD /v2/test/moving/manifests/v1')),
    `the tag was resolved upstream; log:\n${log.join('\n')}`,
  );
});

test('node 1 pulls the three images while the upstream is up; its peers find them', async () => {
  assert.equal(await cri[0]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
  assert.equal(await cri[0]!.pullImage(`${ns}/test/multi:v1`), multi.images[0]!.configDigest);
  assert.equal(await cri[0]!.pullImage(`${ns}/test/big:v1`), big.images[0]!.configDigest);
  for (const i of [1, 2]) {
    await waitUntilServed(node(i), { ns, repository: 'test/app', digests: app.images[0]!.layerDigests });
    await waitUntilServed(node(i), {
      ns,
      repository: 'test/multi',
      digests: [multi.topDigest],
      kind: 'manifests',
    });
    await waitUntilServed(node(i), { ns, repository: 'test/big', digests: big.images[0]!.layerDigests });
  }
});

test('upstream STOPPED: node 3 pulls by tag (cached tags served) and by digest from its peers', async () => {
  await pc.cluster.registry.stop();
  // The daemons cache the upstream's reachability for a few seconds; once they see it down they
  // answer the tags they hold or know from peers (HEAD by tag: what containerd resolves with).
  for (const [i, repository] of [
    [2, 'test/app'],
    [2, 'test/big'],
    [1, 'test/multi'],
  ] as const) {
    await waitUntilServed(node(i), { ns, repository, digests: ['v1'], kind: 'manifests' });
  }
  const hitsBefore = await metric(2, 'peili_mirror_requests_total', { source: 'peer' });
  const fetchedBefore = await metric(2, 'peili_peer_fetched_bytes_total');
  assert.equal(await cri[2]!.pullImage(`${ns}/test/app:v1`), app.images[0]!.configDigest);
  assert.equal(await cri[2]!.pullImage(`${ns}/test/multi@${multi.topDigest}`), multi.images[0]!.configDigest);
  assert.equal(await cri[2]!.pullImage(`${ns}/test/big:v1`), big.images[0]!.configDigest);
  // Every manifest and blob of the three images came from a peer.
  const hits = (await metric(2, 'peili_mirror_requests_total', { source: 'peer' })) - hitsBefore;
  const fetched = (await metric(2, 'peili_peer_fetched_bytes_total')) - fetchedBefore;
  assert.ok(hits >= 2 + 5 + 5 + 3, `peer hits on node 3: ${hits}`);
  assert.ok(fetched >= big.totalSize, `bytes node 3 fetched from peers: ${fetched}`);
  const held = (await node(2).node.ctr(['content', 'ls', '-q'])).stdout;
  for (const digest of [...app.images[0]!.layerDigests, ...big.images[0]!.layerDigests]) {
    assert.ok(held.includes(digest), `node 3 holds ${digest}`);
  }
});

test('upstream STOPPED: node 2 pulls by digest and by tag; the serving peer is killed mid-blob and the pull resumes', async () => {
  assert.equal(await cri[1]!.pullImage(`${ns}/test/app@${app.topDigest}`), app.images[0]!.configDigest);
  assert.equal(await cri[1]!.pullImage(`${ns}/test/multi:v1`), multi.images[0]!.configDigest);
  // Node 1 and node 3 both hold the 200 MiB blob now.
  await waitUntilServed(node(1), { ns, repository: 'test/big', digests: big.images[0]!.layerDigests });
  const layerSize = big.blobs.find((b) => b.digest === big.images[0]!.layerDigests[0])!.size;
  const servedBefore = [
    await metric(0, 'peili_peer_served_bytes_total'),
    0,
    await metric(2, 'peili_peer_served_bytes_total'),
  ];
  const fetchedBefore = await metric(1, 'peili_peer_fetched_bytes_total');

  let pulled = false;
  const pull = cri[1]!.pullImage(`${ns}/test/big@${big.topDigest}`).finally(() => (pulled = true));
  // Kill whichever holder is streaming once it has sent 40 MB: no graceful end of that stream.
  const KILL_AT = 40e6;
  let killed: number | undefined;
  const deadline = Date.now() + 120_000;
  while (killed === undefined && !pulled && Date.now() < deadline) {
    for (const i of [0, 2]) {
      const served = (await metric(i, 'peili_peer_served_bytes_total')) - servedBefore[i]!;
      if (served >= KILL_AT) {
        killed = i;
        break;
      }
    }
    if (killed === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.notEqual(killed, undefined, 'a holder served 40 MB before the pull ended');
  await node(killed!).killDaemon();
  const other = killed === 0 ? 2 : 0;

  assert.equal(await pull, big.images[0]!.configDigest);
  const otherServed = (await metric(other, 'peili_peer_served_bytes_total')) - servedBefore[other]!;
  const fetched = (await metric(1, 'peili_peer_fetched_bytes_total')) - fetchedBefore;
  console.log(
    `killed node ${killed! + 1}'s daemon; node ${other + 1} served ${otherServed} B; node 2 fetched ${fetched} B`,
  );
  // Resumed, not restarted: the other holder sent only the rest, and nothing was fetched twice over.
  assert.ok(otherServed > 0, `node ${other + 1} served the rest`);
  assert.ok(otherServed < layerSize - 20e6, `node ${other + 1} served ${otherServed} of ${layerSize} bytes`);
  assert.ok(fetched < layerSize + 20e6, `node 2 fetched ${fetched} bytes for a ${layerSize}-byte layer`);
  await node(killed!).startDaemon();
});
