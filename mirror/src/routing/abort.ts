// AbortSignal.any() on Node 20 keeps a record of every signal derived from a long-lived parent
// (measured: about 55 bytes each, not reclaimed while the parent lives). Peer calls derive one per
// request from the router's lifetime signal, which would grow without bound in a daemon; this
// helper links a per-call signal to its parents with listeners that are removed when the call ends.
import { setMaxListeners } from 'node:events';

/** A per-call signal that aborts when a parent aborts or after its timeout; call `dispose` when done. */
export interface CallSignal {
  readonly signal: AbortSignal;
  /** True when the call's own timeout fired (not a parent). */
  timedOut(): boolean;
  /** Removes the listeners on the parents and clears the timer. */
  dispose(): void;
}

/** Links a new signal to `parents` (undefined ones ignored), with its own timeout when given. */
export function callSignal(parents: readonly (AbortSignal | undefined)[], timeoutMs?: number): CallSignal {
  const controller = new AbortController();
  // A call signal is often the parent of one call per member (a warm-up, an advertise round):
  // more than the default 10 listeners is expected, and each is removed when its call ends.
  setMaxListeners(0, controller.signal);
  const linked = parents.filter((parent): parent is AbortSignal => parent !== undefined);
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
        }, timeoutMs);
  const onAbort = (event: Event): void => controller.abort((event.target as AbortSignal).reason);
  for (const parent of linked) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      if (timer) clearTimeout(timer);
      for (const parent of linked) parent.removeEventListener('abort', onAbort);
    },
  };
}
