import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarizeProfile, type CpuProfile } from './profile-summary.js';

describe('summarizeProfile', () => {
  it('adds self time per function and per file, highest first', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: 'update', url: 'node:internal/crypto/hash', lineNumber: 131 } },
        {
          id: 3,
          callFrame: {
            functionName: '',
            url: 'file:///repo/node_modules/fastify/lib/route.js',
            lineNumber: 9,
          },
        },
        { id: 4, callFrame: { functionName: 'digest', url: 'node:internal/crypto/hash', lineNumber: 200 } },
      ],
      samples: [2, 3, 2, 4, 1],
      timeDeltas: [3000, 1000, 3000, 1000, 2000],
    };
    const summary = summarizeProfile(profile);
    assert.equal(summary.totalMs, 10);
    assert.deepEqual(summary.functions, [
      { name: 'update node:internal/crypto/hash:132', selfMs: 6, share: 0.6 },
      { name: '(root) (native):0', selfMs: 2, share: 0.2 },
      { name: '(anonymous) node_modules/fastify/lib/route.js:10', selfMs: 1, share: 0.1 },
      { name: 'digest node:internal/crypto/hash:201', selfMs: 1, share: 0.1 },
    ]);
    assert.deepEqual(summary.files, [
      { name: 'node:internal/crypto/hash', selfMs: 7, share: 0.7 },
      { name: '(native)', selfMs: 2, share: 0.2 },
      { name: 'node_modules/fastify/lib/route.js', selfMs: 1, share: 0.1 },
    ]);
  });
});
