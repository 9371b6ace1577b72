import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep, systemClock } from '../src/clock/clock.js';
import { ManualClock } from './manual-clock.js';

describe('ManualClock', () => {
  it('fires due timers in order, each at its own time', () => {
    const clock = new ManualClock(1000);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 10);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 100);
    clock.advance(50);
    assert.deepEqual(fired, [
      ['a', 1010],
      ['b', 1020],
    ]);
    assert.equal(clock.now(), 1050);
    assert.equal(clock.pending, 1);
  });

  it('repeats intervals until cancelled, and cancelled timers never fire', () => {
    const clock = new ManualClock(0);
    let ticks = 0;
    const interval = clock.setInterval(() => ticks++, 10);
    const never = clock.setTimeout(() => assert.fail('cancelled timer fired'), 5);
    never.cancel();
    clock.advance(35);
    assert.equal(ticks, 3);
    interval.cancel();
    clock.advance(100);
    assert.equal(ticks, 3);
    assert.equal(clock.pending, 0);
  });

  it('refresh restarts the countdown from now', () => {
    const clock = new ManualClock(0);
    let fired = false;
    const timer = clock.setTimeout(() => (fired = true), 10);
    clock.advance(8);
    timer.refresh();
    clock.advance(8);
    assert.equal(fired, false);
    clock.advance(2);
    assert.equal(fired, true);
  });

  it('fires timers that a firing timer sets, when they fall in the advanced span', () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    clock.setTimeout(() => clock.setTimeout(() => at.push(clock.now()), 5), 5);
    clock.advance(10);
    assert.deepEqual(at, [10]);
  });
});

describe('sleep', () => {
  it('resolves when the clock passes the delay', async () => {
    const clock = new ManualClock(0);
    let done = false;
    const slept = sleep(clock, 30).then(() => (done = true));
    await clock.tick(29);
    assert.equal(done, false);
    await clock.tick(1);
    await slept;
    assert.equal(done, true);
  });

  it('rejects with the reason when aborted, and drops its timer', async () => {
    const clock = new ManualClock(0);
    const controller = new AbortController();
    const slept = sleep(clock, 30, controller.signal);
    controller.abort(new Error('stop'));
    await assert.rejects(slept, { message: 'stop' });
    assert.equal(clock.pending, 0);
  });

  it('on the system clock, now() is the epoch time', () => {
    assert.ok(Math.abs(systemClock.now() - Date.now()) < 1000);
  });
});
