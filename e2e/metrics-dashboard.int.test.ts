// Every `peili_*` series the Grafana dashboard queries must exist in a real daemon's scrape after
// a pull went through it: a renamed metric or a histogram queried under the wrong suffix shows up
// here, not as an empty panel in production.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { peiliSeriesUsed } from '../mirror/chart-tests/dashboard-queries.js';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  waitFor,
} from '../testbed/index.js';
import { startPeiliCluster, sumMetric, type PeiliCluster } from './peili-cluster.js';

let dir: string;
let pc: PeiliCluster;
let scrape: Map<string, number>;

before(async () => {
  dir = await createScratchDir('e2e-metrics');
  // Node 2's daemon never starts: a member that is down, as during a rolling update, so the
  // router's calls to it fail and `peili_peer_errors_total` has samples to show.
  pc = await startPeiliCluster({
    nodes: 2,
    dir,
    registryHost: '127.0.10.1',
    nodeHosts: ['127.0.10.2', '127.0.10.3'],
    deferred: [1],
  });
  const app = await buildImage(IMAGES.app);
  const ref = `${pc.upstreamHost}/test/app:v1`;
  await pushImage(app, ref);
  const cri = createCriClient(pc.nodes[0]!.node.socket);
  try {
    assert.equal(await cri.pullImage(ref), app.images[0]!.configDigest);
  } finally {
    cri.close();
  }
  // The advertiser counts the new blobs once containerd's events reach it.
  await waitFor(
    async () => {
      scrape = await pc.nodes[0]!.metrics();
      return sumMetric(scrape, 'peili_ingested_bytes_total', { via: 'upstream' }) >= app.totalSize;
    },
    { timeoutMs: 20_000, intervalMs: 200, describe: () => `ingested bytes never reached ${app.totalSize}` },
  );
});

after(async () => {
  await pc?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

/** The metric name of a `name{labels}` sample key. */
function metricName(key: string): string {
  const brace = key.indexOf('{');
  return brace === -1 ? key : key.slice(0, brace);
}

test('the pull went through the daemon (requests were counted)', () => {
  // With the upstream up, the tag HEAD misses on purpose and the manifest and blobs miss too (no
  // peer holds them): four requests at least (HEAD tag, manifest, config, 3 layers).
  assert.ok(sumMetric(scrape, 'peili_mirror_requests_total', { outcome: 'miss' }) >= 4);
  assert.ok(sumMetric(scrape, 'peili_http_requests_total') >= 4);
  assert.ok(sumMetric(scrape, 'peili_peer_errors_total') >= 1, 'calls to the member that is down failed');
});

test('every peili_* series the dashboard queries is in the scrape', () => {
  const used = peiliSeriesUsed();
  assert.ok(used.length >= 5, `the dashboard should query several peili series, got ${used.join(', ')}`);
  const present = new Set([...scrape.keys()].map(metricName));
  const missing = used.filter((name) => !present.has(name));
  assert.deepEqual(missing, [], `missing from /metrics of ${pc.nodes[0]!.metricsUrl}`);
});

test('histograms are exported with _bucket, _sum and _count', () => {
  const present = new Set([...scrape.keys()].map(metricName));
  const histograms = ['peili_http_request_duration_seconds', 'peili_lookup_duration_seconds'];
  for (const base of histograms) {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      assert.ok(present.has(`${base}${suffix}`), `${base}${suffix} in the scrape`);
    }
  }
});
