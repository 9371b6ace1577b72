import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { callSignal } from './abort.js';

describe('callSignal', () => {
  it('leaves no listener on a long-lived parent once disposed', () => {
    const parent = new AbortController();
    for (let i = 0; i < 1000; i++) callSignal([parent.signal, undefined], 60_000).dispose();
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  });

  it('aborts with the parent and its reason, and reports no timeout', () => {
    const parent = new AbortController();
    const call = callSignal([new AbortController().signal, parent.signal], 60_000);
    parent.abort(new Error('stopping'));
    assert.equal(call.signal.aborted, true);
    assert.deepEqual(call.signal.reason, new Error('stopping'));
    assert.equal(call.timedOut(), false);
    call.dispose();
  });

  it('is aborted at once when a parent already is', () => {
    const call = callSignal([AbortSignal.abort('gone')]);
    assert.equal(call.signal.aborted, true);
    assert.equal(call.signal.reason, 'gone');
    call.dispose();
  });

  it('is the parent of many calls at once without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const round = callSignal([new AbortController().signal], 60_000);
    const calls = Array.from({ length: 50 }, () => callSignal([round.signal], 60_000));
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    for (const call of calls) call.dispose();
    round.dispose();
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
  });

  it('times out on its own', async () => {
    const call = callSignal([new AbortController().signal], 10);
    await new Promise((resolve) => call.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal(call.timedOut(), true);
    assert.equal((call.signal.reason as DOMException).name, 'TimeoutError');
    call.dispose();
  });
});
