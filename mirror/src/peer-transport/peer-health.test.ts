import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../test-support/manual-clock.js';
import { PeerHealth } from './peer-health.js';

describe('PeerHealth', () => {
  it('cools a failing peer down for a doubling period, capped, until a success', () => {
    const clock = new ManualClock(0);
    const health = new PeerHealth({ base: 100, max: 300, clock });
    assert.equal(health.coolingDown('a'), false);
    assert.equal(health.fail('a'), 1);
    assert.equal(health.coolingUntil('a'), 100);
    clock.advance(99);
    assert.equal(health.coolingDown('a'), true);
    clock.advance(1);
    assert.equal(health.coolingDown('a'), false);
    assert.equal(health.fail('a'), 2);
    assert.equal(health.coolingUntil('a'), 300);
    assert.equal(health.fail('a'), 3);
    assert.equal(health.coolingUntil('a'), 400, 'capped at max (300 ms from now)');
    assert.equal(health.succeed('a'), true, 'the success ended a running cool-down');
    assert.equal(health.failures('a'), 0);
    assert.equal(health.coolingDown('a'), false);
    assert.equal(health.succeed('a'), false);
  });

  it('forgets long-expired peers once it holds more than its capacity', () => {
    const clock = new ManualClock(0);
    const health = new PeerHealth({ base: 10, max: 10, clock, capacity: 2 });
    health.fail('old-1');
    health.fail('old-2');
    health.fail('old-3');
    clock.advance(100);
    health.fail('new');
    assert.equal(health.failures('old-1'), 0);
    assert.equal(health.failures('new'), 1);
  });
});
