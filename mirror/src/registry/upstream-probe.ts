import { LRUCache } from 'lru-cache';
import { systemClock, type Clock, type ClockTimer } from '../clock/clock.js';
import { upstreamBaseUrl } from '../oci/reference.js';
import { warmUpFetch } from './fetch-warm-up.js';

/** Tells whether a registry's upstream answers at all, so tags may be left to it. */
export interface UpstreamProbe {
  /** True when `GET <base>/v2/` got any HTTP answer (401 included) within the timeout; cached per registry. */
  reachable(registry: string, signal: AbortSignal): Promise<boolean>;
}

/** Collaborators of {@link createUpstreamProbe}. */
export interface UpstreamProbeDeps {
  /** The HTTP client; the global fetch by default. */
  readonly fetch?: typeof fetch;
  /** Times the probe's timeout and the cache. @default systemClock */
  readonly clock?: Clock;
}

/** Tunables of {@link createUpstreamProbe}. */
export interface UpstreamProbeOptions {
  /** How long one probe may take, in ms, before the upstream counts as unreachable. @default 500 */
  readonly timeout?: number;
  /**
   * How long a "reachable" answer is reused, in ms. Short: while it holds, tags are left to the
   * upstream, so an upstream that just went down fails containerd's tag requests until it expires
   * (the demo's "upstream stopped" step met that window with 5 s). @default 1000
   */
  readonly cacheTtl?: number;
  /** How long an "unreachable" answer is reused, in ms (each probe of a dead upstream may take `timeout`). @default 5000 */
  readonly unreachableCacheTtl?: number;
  /** Base URLs per registry host (`127.0.0.1:5000` → `http://127.0.0.1:5000`), for tests and special registries. */
  readonly overrides?: Readonly<Record<string, string>>;
}

/** Defaults of {@link UpstreamProbeOptions}. */
export const UPSTREAM_PROBE_DEFAULTS = Object.freeze({
  timeout: 500,
  cacheTtl: 1_000,
  unreachableCacheTtl: 5_000,
});

/** Creates an {@link UpstreamProbe}: one shared request per registry at a time, answers cached briefly. */
export function createUpstreamProbe(
  deps: UpstreamProbeDeps = {},
  options: UpstreamProbeOptions = {},
): UpstreamProbe {
  const timeout = options.timeout ?? UPSTREAM_PROBE_DEFAULTS.timeout;
  const cacheTtl = options.cacheTtl ?? UPSTREAM_PROBE_DEFAULTS.cacheTtl;
  const unreachableCacheTtl = options.unreachableCacheTtl ?? UPSTREAM_PROBE_DEFAULTS.unreachableCacheTtl;
  const doFetch = deps.fetch ?? fetch;
  if (deps.fetch === undefined) warmUpFetch();
  const clock = deps.clock ?? systemClock;
  // Answers per registry host, each kept for its own TTL (reachable and unreachable differ).
  const cache = new LRUCache<string, { reachable: boolean }>({
    max: 1024,
    ttl: cacheTtl,
    ttlResolution: 0,
    perf: { now: () => clock.now() },
  });
  const inflight = new Map<string, Promise<boolean>>();

  const probe = async (registry: string): Promise<boolean> => {
    // The probe's own timeout, not a caller's signal, bounds it: other callers share the answer.
    const controller = new AbortController();
    let timer: ClockTimer | undefined;
    try {
      const pending = doFetch(`${upstreamBaseUrl(registry, options.overrides)}/v2/`, {
        method: 'GET',
        signal: controller.signal,
        redirect: 'manual',
      });
      // Armed after the call's synchronous part: a stall of this process is not the upstream's.
      timer = clock.setTimeout(() => controller.abort(new Error(`no answer within ${timeout} ms`)), timeout);
      const response = await pending;
      await response.body?.cancel().catch(() => {});
      return true;
    } catch {
      return false;
    } finally {
      timer?.cancel();
    }
  };

  return {
    async reachable(registry, signal) {
      if (signal.aborted) throw signal.reason;
      const cached = cache.get(registry);
      if (cached) return cached.reachable;
      let pending = inflight.get(registry);
      if (!pending) {
        pending = probe(registry).then((reachable) => {
          const ttl = reachable ? cacheTtl : unreachableCacheTtl;
          // lru-cache reads a TTL of 0 as "forever"; here 0 means "do not reuse the answer".
          if (ttl > 0) cache.set(registry, { reachable }, { ttl });
          inflight.delete(registry);
          return reachable;
        });
        inflight.set(registry, pending);
      }
      return new Promise<boolean>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        pending.then((value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        }, reject);
      });
    },
  };
}
