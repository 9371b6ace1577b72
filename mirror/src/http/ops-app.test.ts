import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import { buildOpsApp } from './ops-app.js';

function opsApp(ready: () => boolean | Promise<boolean>): {
  app: ReturnType<typeof buildOpsApp>;
  registry: Registry;
} {
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  metrics.servedBytes.inc({ source: 'local' }, 42);
  const app = buildOpsApp({ registry, ready });
  after(() => app.close());
  return { app, registry };
}

describe('buildOpsApp', () => {
  it('GET /metrics answers the Prometheus text format', async () => {
    const { app, registry } = opsApp(() => true);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], registry.contentType);
    assert.match(res.body, /^# HELP peili_/m);
    assert.match(res.body, /^peili_served_bytes_total\{source="local"\} 42$/m);
  });

  const readiness: Array<
    [name: string, ready: () => boolean | Promise<boolean>, status: number, body: string]
  > = [
    ['ready', () => true, 200, 'ok\n'],
    ['not ready', () => false, 503, 'not ready\n'],
    ['ready (async)', async () => true, 200, 'ok\n'],
    ['not ready (async)', async () => false, 503, 'not ready\n'],
    [
      'check throws',
      () => {
        throw new Error('store down');
      },
      503,
      'not ready\n',
    ],
    ['check rejects', async () => Promise.reject(new Error('store down')), 503, 'not ready\n'],
  ];
  for (const [name, ready, status, body] of readiness) {
    it(`GET /readyz when ${name} → ${status}`, async () => {
      const { app } = opsApp(ready);
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(res.statusCode, status);
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(res.body, body);
    });
  }

  it('GET /readyz?verbose adds the node report as JSON, with the same status', async () => {
    const registry = new Registry();
    const report = { mirror: 'configured', layers: 'discarded', runtime: 'containerd 2.1.5' };
    const app = buildOpsApp({ registry, ready: () => false, nodeReport: () => report });
    after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/readyz?verbose' });
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(res.json(), { ready: false, node: report });
    const plain = buildOpsApp({ registry, ready: () => true });
    after(() => plain.close());
    assert.deepEqual((await plain.inject({ method: 'GET', url: '/readyz?verbose' })).json(), {
      ready: true,
      node: null,
    });
  });

  it('GET /livez is 200 even when not ready', async () => {
    const { app } = opsApp(() => false);
    const res = await app.inject({ method: 'GET', url: '/livez' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'ok\n');
  });

  it('unknown paths are 404', async () => {
    const { app } = opsApp(() => true);
    assert.equal((await app.inject({ method: 'GET', url: '/nope' })).statusCode, 404);
  });
});
