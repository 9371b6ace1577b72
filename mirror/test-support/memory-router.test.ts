import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryNetwork, type MemoryRouter } from './memory-router.js';
import { collect, runRouterConformance, type ConformanceNode } from './router-conformance.js';

const TTL_MS = 300;

runRouterConformance('MemoryRouter', async () => {
  const network = new MemoryNetwork();
  let next = 0;
  const make = (): ConformanceNode & { router: MemoryRouter } => {
    const location = { id: `node-${next}:5001`, registryUrl: `http://node-${next++}:5000` };
    return { location, router: network.join(location, { ttlMs: TTL_MS }) };
  };
  const nodes = [make(), make(), make()];
  return {
    nodes,
    ttlMs: TTL_MS,
    lookupBudgetMs: 0,
    join: async () => make(),
    crash: async (node) => (node.router as MemoryRouter).crash(),
    settle: async () => {},
    close: async () => {},
  };
});

describe('MemoryRouter', () => {
  it('forgets every key of a member that leaves gracefully at once', async () => {
    const network = new MemoryNetwork();
    const a = network.join({ id: 'a:1', registryUrl: 'http://a:2' });
    const b = network.join({ id: 'b:1', registryUrl: 'http://b:2' });
    await a.advertise(['sha256:' + 'a'.repeat(64)]);
    assert.deepEqual(await collect(b, 'sha256:' + 'a'.repeat(64)), [
      { id: 'a:1', registryUrl: 'http://a:2' },
    ]);
    a.leave();
    assert.deepEqual(await collect(b, 'sha256:' + 'a'.repeat(64)), []);
    assert.equal(a.ready(), false);
  });
});
