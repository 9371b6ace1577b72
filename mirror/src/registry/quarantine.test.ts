import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../test-support/manual-clock.js';
import { Quarantine } from './quarantine.js';

describe('Quarantine', () => {
  it('holds a peer back for one digest only, until its TTL ends', () => {
    const clock = new ManualClock(0);
    const quarantine = new Quarantine({ ttl: 100, clock });
    quarantine.add('peer-a', 'sha256:1');
    clock.advance(50);
    quarantine.add('peer-b', 'sha256:1');
    assert.deepEqual([...quarantine.peersFor('sha256:1')].sort(), ['peer-a', 'peer-b']);
    assert.deepEqual([...quarantine.peersFor('sha256:2')], []);
    clock.advance(50);
    assert.deepEqual([...quarantine.peersFor('sha256:1')], ['peer-b']);
    clock.advance(50);
    assert.deepEqual([...quarantine.peersFor('sha256:1')], []);
  });

  it('forgets the least recently quarantined digests beyond its capacity', () => {
    const quarantine = new Quarantine({ ttl: 1_000, capacity: 2, clock: new ManualClock(0) });
    quarantine.add('peer', 'sha256:1');
    quarantine.add('peer', 'sha256:2');
    quarantine.add('peer', 'sha256:3');
    assert.deepEqual([...quarantine.peersFor('sha256:1')], []);
    assert.deepEqual([...quarantine.peersFor('sha256:3')], ['peer']);
  });
});
