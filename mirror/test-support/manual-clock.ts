// A clock that moves only when a test says so: `advance(ms)` fires the timers that fall due, in
// order, each at its own time. Lives beside `clock.ts` until test-support code has its own folder.
import type { Clock, ClockTimer } from '../src/clock/clock.js';

interface Pending {
  readonly id: number;
  due: number;
  readonly every: number | undefined;
  readonly delay: number;
  readonly callback: () => void;
}

/** A {@link Clock} for tests: time stands still until {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 0;
  readonly #timers = new Map<number, Pending>();

  /** Starts at `start` ms since the epoch (an arbitrary fixed date by default). */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    return this.#add(callback, ms, undefined);
  }

  setInterval(callback: () => void, ms: number): ClockTimer {
    return this.#add(callback, ms, Math.max(1, ms));
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, earliest first. */
  advance(ms: number): void {
    const target = this.#now + Math.max(0, ms);
    for (;;) {
      let next: Pending | undefined;
      for (const timer of this.#timers.values()) {
        if (timer.due <= target && (next === undefined || timer.due < next.due)) next = timer;
      }
      if (next === undefined) break;
      this.#now = Math.max(this.#now, next.due);
      if (next.every === undefined) this.#timers.delete(next.id);
      else next.due += next.every;
      next.callback();
    }
    this.#now = target;
  }

  /**
   * Advances `ms` and then lets promises and I/O callbacks that the fired timers started run
   * (one turn of the event loop), for code that awaits between timers.
   */
  async tick(ms: number): Promise<void> {
    this.advance(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  #add(callback: () => void, ms: number, every: number | undefined): ClockTimer {
    const delay = Math.max(0, ms);
    const timer: Pending = { id: this.#nextId++, due: this.#now + delay, every, delay, callback };
    this.#timers.set(timer.id, timer);
    const handle: ClockTimer = {
      cancel: () => void this.#timers.delete(timer.id),
      refresh: () => {
        timer.due = this.#now + timer.delay;
        this.#timers.set(timer.id, timer);
      },
      unref: () => handle,
    };
    return handle;
  }
}
