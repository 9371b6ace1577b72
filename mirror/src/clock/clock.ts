// Time as a dependency: everything in registry/, routing/ and http/ that waits, expires or times
// out reads the time and sets its timers through a Clock, so tests drive time with a ManualClock
// instead of sleeping.

/** A pending timer of a {@link Clock}. */
export interface ClockTimer {
  /** Stops it; harmless when it already fired. */
  cancel(): void;
  /** Restarts its countdown from now with the same delay (node's `Timeout.refresh`). */
  refresh(): void;
  /** Lets the process exit while it is pending (real timers only; a no-op on a manual clock). */
  unref(): ClockTimer;
}

/** The time and timers a component uses. */
export interface Clock {
  /** Milliseconds since the epoch, with sub-millisecond precision where the clock has it. */
  now(): number;
  /** Calls `callback` once, `ms` from now. */
  setTimeout(callback: () => void, ms: number): ClockTimer;
  /** Calls `callback` every `ms` until cancelled. */
  setInterval(callback: () => void, ms: number): ClockTimer;
}

function wrap(timer: NodeJS.Timeout, clear: (timer: NodeJS.Timeout) => void): ClockTimer {
  const handle: ClockTimer = {
    cancel: () => clear(timer),
    refresh: () => void timer.refresh(),
    unref: () => {
      timer.unref();
      return handle;
    },
  };
  return handle;
}

/** The process's clock: `performance` time on the epoch scale, node's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback: () => void, ms: number) => wrap(setTimeout(callback, ms), clearTimeout),
  setInterval: (callback: () => void, ms: number) => wrap(setInterval(callback, ms), clearInterval),
});

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason when it aborts first.
 * (The one place a component waits for time to pass.)
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
