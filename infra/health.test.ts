import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { daemonSetHealth, type DaemonSetCounts, type MirrorHealthReport } from './health.js';

describe('daemonSetHealth', () => {
  const cases: [string, DaemonSetCounts | undefined, MirrorHealthReport][] = [
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
