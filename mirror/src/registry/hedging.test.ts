import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep } from '../clock/clock.js';
import { ManualClock } from '../../test-support/manual-clock.js';
import { createLatencyTracker, hedge, HedgeExhaustedError } from './hedging.js';

async function* list<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

describe('createLatencyTracker', () => {
  const cases: {
    name: string;
    samples: number[];
    options?: Parameters<typeof createLatencyTracker>[0];
    want: number;
  }[] = [
    { name: 'no samples: initial', samples: [], want: 50 },
    { name: 'no samples: initial clamped to max', samples: [], options: { initial: 900 }, want: 500 },
    { name: 'p90 of 1..10', samples: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => n * 10), want: 90 },
    { name: 'p90 of unsorted', samples: [100, 10, 30, 20, 90, 80, 70, 60, 50, 40], want: 90 },
    { name: 'clamped to min', samples: [1, 1, 2], want: 5 },
    { name: 'clamped to max', samples: [800, 900, 1000], want: 500 },
    { name: 'p50', samples: [10, 20, 30, 40], options: { percentile: 0.5 }, want: 20 },
    {
      name: 'window forgets old samples',
      samples: [400, 400, 400, 20, 20, 20],
      options: { window: 3 },
      want: 20,
    },
    { name: 'ignores negative and NaN', samples: [-5, Number.NaN, 40], want: 40 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const tracker = createLatencyTracker(c.options);
      for (const s of c.samples) tracker.observe(s);
      assert.equal(tracker.delay(), c.want);
    });
  }

  it('rejects bad options', () => {
    assert.throws(() => createLatencyTracker({ percentile: 0 }), {
      message: 'percentile must be in (0, 1], got 0',
    });
    assert.throws(() => createLatencyTracker({ window: 0 }), {
      message: 'window must be a positive integer, got 0',
    });
    assert.throws(() => createLatencyTracker({ min: 10, max: 5 }), {
      message: 'min (10) must not exceed max (5)',
    });
  });
});

/** Lets the promises that fired timers resolved run on (the candidates' async iteration included). */
async function flush(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
}

describe('hedge', () => {
  it('starts the next candidate after the delay and takes the first success', async () => {
    const clock = new ManualClock(0);
    const started: string[] = [];
    const aborted: string[] = [];
    const latency: Record<string, number> = { slow: 3_000, fast: 10 };
    const pending = hedge(
      list(['slow', 'fast']),
      async (name, signal) => {
        started.push(name);
        signal.addEventListener('abort', () => aborted.push(name));
        await sleep(clock, latency[name]!, signal);
        return name.toUpperCase();
      },
      { delay: () => 20, clock },
    );
    await flush();
    assert.deepEqual(started, ['slow']);
    await clock.tick(20);
    await flush();
    assert.deepEqual(started, ['slow', 'fast'], 'the next one starts at the delay');
    await clock.tick(10);
    const won = await pending;
    assert.deepEqual(
      { value: won.value, candidate: won.candidate, index: won.index },
      {
        value: 'FAST',
        candidate: 'fast',
        index: 1,
      },
    );
    assert.deepEqual(started, ['slow', 'fast']);
    assert.deepEqual(aborted, ['slow']);
    assert.equal(clock.now(), 30, 'did not wait for the slow candidate');
  });

  it('does not start a second candidate when the first answers within the delay', async () => {
    const clock = new ManualClock(0);
    const started: string[] = [];
    const pending = hedge(
      list(['a', 'b']),
      async (name) => {
        started.push(name);
        await sleep(clock, 5);
        return name;
      },
      { delay: () => 5_000, clock },
    );
    await flush();
    await clock.tick(5);
    const won = await pending;
    assert.equal(won.value, 'a');
    assert.deepEqual(started, ['a']);
  });

  it('moves on at once when a candidate fails', async () => {
    // The clock never moves: only the failure can start the second candidate.
    const pending = hedge(
      list(['bad', 'good']),
      async (name) => {
        if (name === 'bad') throw new Error('refused');
        return name;
      },
      { delay: () => 5_000, clock: new ManualClock(0) },
    );
    const first = await Promise.race([pending, flush().then(() => 'still pending')]);
    assert.notEqual(first, 'still pending');
    assert.equal((await pending).value, 'good');
  });

  it('rejects with every error when all candidates fail', async () => {
    await assert.rejects(
      hedge(
        list(['a', 'b']),
        async (name) => {
          throw new Error(`fail ${name}`);
        },
        { delay: () => 1 },
      ),
      (error: unknown) => {
        assert.ok(error instanceof HedgeExhaustedError);
        assert.equal(error.message, 'every candidate failed');
        assert.deepEqual(
          error.errors.map((e: Error) => e.message),
          ['fail a', 'fail b'],
        );
        return true;
      },
    );
  });

  it('rejects when there is no candidate', async () => {
    await assert.rejects(
      hedge(list<string>([]), async (n) => n, { delay: () => 1 }),
      { name: 'HedgeExhaustedError', message: 'every candidate failed' },
    );
  });

  it('disposes values that arrive after the winner', async () => {
    const clock = new ManualClock(0);
    const disposed: string[] = [];
    const pending = hedge(
      list(['late', 'winner']),
      async (name) => {
        // `late` ignores its abort signal and still produces a value afterwards.
        await sleep(clock, name === 'late' ? 60 : 5);
        return name;
      },
      { delay: () => 10, dispose: (v) => disposed.push(v), clock },
    );
    await flush();
    await clock.tick(10);
    await flush();
    await clock.tick(5);
    const won = await pending;
    assert.equal(won.value, 'winner');
    assert.deepEqual(disposed, []);
    await clock.tick(45);
    await flush();
    assert.deepEqual(disposed, ['late']);
  });

  it('rejects with the reason of the outer signal', async () => {
    const controller = new AbortController();
    const clock = new ManualClock(0);
    const pending = hedge(list(['a']), (name, signal) => sleep(clock, 1_000, signal).then(() => name), {
      delay: () => 1_000,
      signal: controller.signal,
      clock,
    });
    controller.abort(new Error('client went away'));
    await assert.rejects(pending, { message: 'client went away' });
  });
});
