// Keeps what the cluster index says about this node in step with the local content store:
// a full sync at start, then store events, a re-subscription with backoff and a full resync
// whenever the event stream ends (containerd restarted), and a periodic resync as a safety net.
// Every change goes through one queue, so events and resyncs never interleave.
import { backoff } from '../clock/backoff.js';
import { sleep, systemClock, type Clock, type ClockTimer } from '../clock/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ContentStore, Digest, StoreEvent } from '../store/content-store.js';
import { isDigestKey, isTagKey } from './keys.js';
import { silentLogger, type RoutingLogger } from './logger.js';
import type { Router } from './router.js';

/** Dependencies of `createAdvertiser`. */
export interface AdvertiserDeps {
  readonly store: ContentStore;
  readonly router: Router;
  readonly metrics?: Pick<Metrics, 'ingestedBytes'>;
  readonly logger?: RoutingLogger;
  /** True when the mirror recently served `digest` from a peer (so a new blob counts as `via=peer`). */
  readonly servedFromPeer?: (digest: Digest) => boolean;
  /** Times the rescans, periodic resyncs and re-subscriptions. @default systemClock */
  readonly clock?: Clock;
}

/** Options of `createAdvertiser` (durations in ms). */
export interface AdvertiserOptions {
  /** Full resync interval, the safety net for missed events. @default 300000 */
  readonly resyncIntervalMs?: number;
  /** First delay before re-subscribing after the event stream ended; doubles up to the max. @default 500 */
  readonly resubscribeMs?: number;
  /** Longest re-subscribe delay. @default 30000 */
  readonly maxResubscribeMs?: number;
  /** Delay that coalesces the content rescans image events trigger. @default 200 */
  readonly rescanDelayMs?: number;
}

/** The advertise loop of one node. */
export interface Advertiser {
  /** Runs the first full sync, then follows the store in the background until `signal` aborts. */
  start(signal: AbortSignal): Promise<void>;
  /** Diffs the store against what is advertised now: advertises new keys, withdraws gone ones. */
  resync(signal?: AbortSignal): Promise<void>;
  /** Keys currently advertised (digests and tags). */
  advertised(): ReadonlySet<string>;
  /** Resolves when the background loop has stopped (after `signal` aborted). */
  stopped(): Promise<void>;
}

/**
 * The routing key of an image record: its name when it is `registry/repository:tag`. Names like
 * `repo@sha256:…` and CRI's bare `sha256:<config>` ids give none: digest keys cover their content.
 */
export function tagKeyOf(name: string): string | undefined {
  return isTagKey(name) ? name : undefined;
}

/** Creates the advertiser; nothing happens until `start`. */
export function createAdvertiser(deps: AdvertiserDeps, options: AdvertiserOptions = {}): Advertiser {
  const resyncInterval = options.resyncIntervalMs ?? 300_000;
  const resubscribeFirst = options.resubscribeMs ?? 500;
  const resubscribeMax = options.maxResubscribeMs ?? 30_000;
  const rescanDelay = options.rescanDelayMs ?? 200;
  const { store, router } = deps;
  const logger = deps.logger ?? silentLogger;
  const advertised = new Set<string>();
  // Every blob seen so far (labelled or not): a digest not in here is new content.
  const knownBlobs = new Set<string>();
  let baselined = false;
  let queue: Promise<unknown> = Promise.resolve();
  let loop: Promise<void> = Promise.resolve();
  let rescanTimer: ClockTimer | undefined;
  const clock = deps.clock ?? systemClock;

  function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  function ingested(digest: string, size: number): void {
    if (!baselined) return;
    const via = deps.servedFromPeer?.(digest as Digest) ? 'peer' : 'upstream';
    deps.metrics?.ingestedBytes.inc({ via }, size);
  }

  async function apply(add: string[], remove: string[], signal?: AbortSignal): Promise<void> {
    for (const key of add) advertised.add(key);
    for (const key of remove) advertised.delete(key);
    if (add.length > 0) await router.advertise(add, signal);
    if (remove.length > 0) await router.withdraw(remove, signal);
  }

  // Diffs digest keys (and, when `withTags`, tag keys) against the store.
  async function sync(withTags: boolean, signal?: AbortSignal): Promise<void> {
    const [content, images] = await Promise.all([
      store.listContent(signal),
      withTags ? store.listImages(signal) : Promise.resolve(undefined),
    ]);
    const wanted = new Set<string>();
    const present = new Set<string>();
    for (const info of content) {
      present.add(info.digest);
      if (!knownBlobs.has(info.digest)) {
        knownBlobs.add(info.digest);
        ingested(info.digest, info.size);
      }
      // Every blob is advertised, labelled or not: containerd 2.1+ announces a blob before it
      // labels its source (spegel#1021), and what a node may serve is decided when serving.
      if (isDigestKey(info.digest)) wanted.add(info.digest);
    }
    for (const digest of knownBlobs) if (!present.has(digest)) knownBlobs.delete(digest);
    for (const image of images ?? []) {
      const key = tagKeyOf(image.name);
      if (key) wanted.add(key);
    }
    const add = [...wanted].filter((key) => !advertised.has(key));
    const remove = [...advertised].filter((key) => !wanted.has(key) && (withTags || isDigestKey(key)));
    baselined = true;
    await apply(add, remove, signal);
    if (add.length > 0 || remove.length > 0)
      logger.debug({ added: add.length, withdrawn: remove.length }, 'advertised keys synced');
  }

  function scheduleRescan(signal: AbortSignal): void {
    if (rescanTimer) return;
    rescanTimer = clock
      .setTimeout(() => {
        rescanTimer = undefined;
        if (signal.aborted) return;
        serial(() => sync(false, signal)).catch((error: unknown) =>
          logger.warn({ err: error }, 'content rescan failed'),
        );
      }, rescanDelay)
      .unref();
  }

  async function handle(event: StoreEvent, signal: AbortSignal): Promise<void> {
    switch (event.kind) {
      case 'image-create':
      case 'image-update': {
        const key = tagKeyOf(event.name);
        if (key && !advertised.has(key)) await apply([key], [], signal);
        // containerd < 2.1 emits no content events: the pull's blobs are found by a rescan.
        scheduleRescan(signal);
        return;
      }
      case 'image-delete': {
        const key = tagKeyOf(event.name);
        if (key && advertised.has(key)) await apply([], [key], signal);
        scheduleRescan(signal);
        return;
      }
      case 'content-create': {
        const info = await store.info(event.digest, signal);
        if (!info) return;
        if (!knownBlobs.has(info.digest)) {
          knownBlobs.add(info.digest);
          ingested(info.digest, info.size);
        }
        // At once, without waiting for the distribution-source label containerd adds after the fetch.
        if (isDigestKey(info.digest) && !advertised.has(info.digest)) {
          await apply([info.digest], [], signal);
        }
        return;
      }
      case 'content-delete':
        knownBlobs.delete(event.digest);
        if (advertised.has(event.digest)) await apply([], [event.digest], signal);
        return;
    }
  }

  // Waits out a re-subscribe delay; an abort ends the wait early (the loop then stops).
  const pause = (ms: number, signal: AbortSignal): Promise<void> => sleep(clock, ms, signal).catch(() => {});

  async function follow(
    signal: AbortSignal,
    firstEvents: AsyncIterable<StoreEvent> | undefined,
  ): Promise<void> {
    let events = firstEvents;
    let failures = 0;
    while (!signal.aborted) {
      try {
        events ??= store.subscribe(signal);
        let any = false;
        for await (const event of events) {
          if (!any) failures = 0;
          any = true;
          await serial(() => handle(event, signal)).catch((error: unknown) =>
            logger.warn({ err: error, event: event.kind }, 'store event not applied'),
          );
        }
      } catch (error) {
        if (signal.aborted) break;
        logger.warn({ err: error }, 'store event stream failed');
      }
      events = undefined;
      if (signal.aborted) break;
      const delay = backoff(++failures, resubscribeFirst, resubscribeMax);
      logger.info({ retryInMs: delay }, 'store event stream ended; re-subscribing and resyncing');
      await pause(delay, signal);
      if (signal.aborted) break;
      try {
        // Subscribe before the resync, so changes made during the resync are not lost.
        events = store.subscribe(signal);
        await serial(() => sync(true, signal));
      } catch (error) {
        if (!signal.aborted) logger.warn({ err: error }, 'resync after re-subscribe failed');
      }
    }
  }

  const advertiser: Advertiser = {
    async start(signal) {
      let events: AsyncIterable<StoreEvent> | undefined;
      try {
        events = store.subscribe(signal);
      } catch (error) {
        logger.warn({ err: error }, 'subscribing to store events failed');
      }
      try {
        await serial(() => sync(true, signal));
      } catch (error) {
        // The store may not be up yet: the periodic resync and re-subscription recover.
        logger.warn({ err: error }, 'initial sync failed');
      }
      const periodic = clock
        .setInterval(() => {
          serial(() => sync(true, signal)).catch((error: unknown) =>
            logger.warn({ err: error }, 'periodic resync failed'),
          );
        }, resyncInterval)
        .unref();
      loop = follow(signal, events).finally(() => {
        periodic.cancel();
        rescanTimer?.cancel();
      });
    },
    resync: (signal) => serial(() => sync(true, signal)),
    advertised: () => advertised,
    stopped: () => loop,
  };
  return advertiser;
}
