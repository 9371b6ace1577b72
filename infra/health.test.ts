import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { combineHealth, daemonSetHealth, type DaemonSetCounts, type DaemonSetReport } from './health.js';
import type { NodeHealth } from './node-reports.js';

describe('daemonSetHealth', () => {
  const cases: [string, DaemonSetCounts | undefined, DaemonSetReport][] = [
    ['no status yet', undefined, { desired: 0, ready: 0, updated: 0, status: 'unknown' }],
    ['no desired count', {}, { desired: 0, ready: 0, updated: 0, status: 'unknown' }],
    [
      'no nodes scheduled',
      { desiredNumberScheduled: 0 },
      { desired: 0, ready: 0, updated: 0, status: 'empty' },
    ],
    [
      'all ready and updated',
      { desiredNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 3 },
      { desired: 3, ready: 3, updated: 3, status: 'healthy' },
    ],
    [
      'none ready',
      { desiredNumberScheduled: 3, numberReady: 0, updatedNumberScheduled: 3 },
      { desired: 3, ready: 0, updated: 3, status: 'down' },
    ],
    [
      'rolling out',
      { desiredNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 1 },
      { desired: 3, ready: 3, updated: 1, status: 'progressing' },
    ],
    [
      'updated but one not ready',
      { desiredNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3 },
      { desired: 3, ready: 2, updated: 3, status: 'degraded' },
    ],
  ];
  for (const [name, status, expected] of cases) {
    it(name, () => assert.deepEqual(daemonSetHealth(status), expected));
  }
});

describe('combineHealth', () => {
  const complete: DaemonSetReport = { desired: 2, ready: 2, updated: 2, status: 'healthy' };
  const node = (status: NodeHealth['status']): NodeHealth => ({
    pod: 'p',
    ready: true,
    endpoint: 'http://127.0.0.1:29999',
    report: { mirror: 'configured', layers: 'kept', runtime: 'containerd 2.1.5' },
    status,
  });
  it('is healthy only when every node serves', () => {
    const nodes = { a: node('serving'), b: node('serving') };
    assert.deepEqual(combineHealth(complete, nodes), { ...complete, nodes });
  });
  it('is not-serving when a node discards layers, even with every pod ready', () => {
    const nodes = { a: node('serving'), b: node('discarding-layers') };
    assert.deepEqual(combineHealth(complete, nodes), { ...complete, status: 'not-serving', nodes });
  });
  it('is not-serving when a node could not be asked', () => {
    const nodes = { a: node('serving') };
    assert.equal(combineHealth(complete, nodes).status, 'not-serving');
  });
  it('is unknown when the nodes were not read: a ready pod alone proves nothing', () => {
    assert.deepEqual(combineHealth(complete, 'read during pulumi up'), {
      ...complete,
      status: 'unknown',
      nodes: 'read during pulumi up',
    });
  });
  it('keeps the DaemonSet word when the rollout is not complete', () => {
    const down: DaemonSetReport = { desired: 2, ready: 0, updated: 2, status: 'down' };
    assert.deepEqual(combineHealth(down, {}), { ...down, nodes: {} });
  });
});
