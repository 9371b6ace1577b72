import { systemClock, type Clock, type ClockTimer } from '../clock/clock.js';

/** Options of a {@link LatencyTracker}: which percentile of how many recent samples, and its bounds. */
export interface LatencyTrackerOptions {
  /** Percentile of the recent samples used as the hedge delay, in (0, 1]. @default 0.9 */
  readonly percentile?: number;
  /** How many recent samples are kept (a ring buffer). @default 64 */
  readonly window?: number;
  /** Lower bound of the delay, in ms. @default 5 */
  readonly min?: number;
  /** Upper bound of the delay, in ms. @default 500 */
  readonly max?: number;
  /** Delay before any sample was observed, in ms. @default 50 */
  readonly initial?: number;
}

/** Keeps recent latencies (time to response headers) and turns them into a hedge delay. */
export interface LatencyTracker {
  /** Records one latency in ms. */
  observe(ms: number): void;
  /** The configured percentile of the recent samples, clamped to [min, max]. */
  delay(): number;
  /** How many samples are currently kept. */
  size(): number;
}

/** A percentile tracker over a fixed-size ring of recent samples. */
export function createLatencyTracker(options: LatencyTrackerOptions = {}): LatencyTracker {
  const percentile = options.percentile ?? 0.9;
  const window = options.window ?? 64;
  const min = options.min ?? 5;
  const max = options.max ?? 500;
  const initial = options.initial ?? 50;
  if (!(percentile > 0 && percentile <= 1))
    throw new RangeError(`percentile must be in (0, 1], got ${percentile}`);
  if (!(Number.isInteger(window) && window > 0))
    throw new RangeError(`window must be a positive integer, got ${window}`);
  if (!(min <= max)) throw new RangeError(`min (${min}) must not exceed max (${max})`);
  const samples: number[] = [];
  let next = 0;
  const clamp = (v: number): number => Math.min(max, Math.max(min, v));
  return {
    observe(ms) {
      if (!Number.isFinite(ms) || ms < 0) return;
      if (samples.length < window) samples.push(ms);
      else samples[next] = ms;
      next = (next + 1) % window;
    },
    delay() {
      if (samples.length === 0) return clamp(initial);
      const sorted = [...samples].sort((a, b) => a - b);
      // Nearest-rank percentile: the smallest sample with at least `percentile` of samples at or below it.
      const rank = Math.max(1, Math.ceil(percentile * sorted.length));
      return clamp(sorted[rank - 1] ?? initial);
    },
    size() {
      return samples.length;
    },
  };
}

/** Options of {@link hedge}. */
export interface HedgeOptions<T> {
  /** Delay in ms before the next candidate is started while earlier ones are still pending. */
  readonly delay: () => number;
  /** Ends every attempt; `hedge` then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Releases a value that lost the race (e.g. destroys a response body that arrived too late). */
  readonly dispose?: (value: T) => void;
  /** Times the hedge delay. @default systemClock */
  readonly clock?: Clock;
}

/** The winner of a {@link hedge} race. */
export interface HedgeResult<C, T> {
  readonly value: T;
  readonly candidate: C;
  /** Position of the winner in the order candidates were started. */
  readonly index: number;
}

/** Raised by {@link hedge} when every candidate failed (or there was none); `errors` holds each failure. */
export class HedgeExhaustedError extends AggregateError {
  override readonly name = 'HedgeExhaustedError';
}

/**
 * Runs `attempt` on candidates one after another, starting the next one whenever the running
 * ones have not succeeded within `delay()` ms or one of them fails, and resolves with the first
 * success. The losers' signals are aborted (and late values disposed). Candidates come from an
 * async source so holders that a lookup finds later can still join the race.
 * Rejects with {@link HedgeExhaustedError} once every candidate failed.
 */
export function hedge<C, T>(
  candidates: AsyncIterator<C>,
  attempt: (candidate: C, signal: AbortSignal) => Promise<T>,
  options: HedgeOptions<T>,
): Promise<HedgeResult<C, T>> {
  return new Promise((resolve, reject) => {
    const controllers: AbortController[] = [];
    const errors: unknown[] = [];
    let running = 0;
    let exhausted = false;
    let settled = false;
    let pulling = false;
    let timer: ClockTimer | undefined;
    const clock = options.clock ?? systemClock;

    const finish = (): void => {
      settled = true;
      timer?.cancel();
      options.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      if (settled) return;
      finish();
      for (const c of controllers) c.abort(options.signal?.reason);
      reject(options.signal?.reason);
    };
    const maybeFail = (): void => {
      if (!settled && exhausted && running === 0 && !pulling) {
        finish();
        reject(new HedgeExhaustedError(errors, 'every candidate failed'));
      }
    };
    const armTimer = (): void => {
      timer?.cancel();
      timer = clock.setTimeout(() => void startNext(), options.delay());
    };
    const startNext = async (): Promise<void> => {
      if (settled || exhausted || pulling) return;
      pulling = true;
      let step: IteratorResult<C>;
      try {
        step = await candidates.next();
      } catch (error) {
        step = { done: true, value: undefined };
        errors.push(error);
      }
      pulling = false;
      if (settled) return;
      if (step.done) {
        exhausted = true;
        maybeFail();
        return;
      }
      const candidate = step.value;
      const index = controllers.length;
      const controller = new AbortController();
      controllers.push(controller);
      running++;
      armTimer();
      attempt(candidate, controller.signal).then(
        (value) => {
          running--;
          if (settled) {
            options.dispose?.(value);
            return;
          }
          finish();
          controllers.forEach((c, i) => {
            if (i !== index) c.abort(new Error('hedge: another candidate won'));
          });
          resolve({ value, candidate, index });
        },
        (error: unknown) => {
          running--;
          if (settled) return;
          errors.push(error);
          // A failure frees its slot at once: no reason to wait out the hedge delay.
          if (!exhausted) void startNext();
          else maybeFail();
        },
      );
    };

    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    void startNext();
  });
}
