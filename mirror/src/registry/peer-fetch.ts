import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Metrics } from '../metrics/metrics.js';
import { digestAlgorithm, isDigest } from '../oci/digest.js';
import { detectManifestMediaType, MANIFEST_MEDIA_TYPES } from '../oci/media-types.js';
import { imageName, isRepository, isTag } from '../oci/reference.js';
import type { PeerLocation, Router } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import { createLatencyTracker, hedge, HedgeExhaustedError, type LatencyTrackerOptions } from './hedging.js';
import { BACKLOG_HIGH, createBlobHasher, type BlobHasher } from './blob-hasher.js';
import type { PeerBlob, PeerManifest, PeerRequest, PeerSource } from './peer-source.js';
import { MIRRORED_HEADER } from '../peer-transport/headers.js';
import { COOL_DOWN_REASONS, PeerError, type PeerFailureReason } from '../peer-transport/peer-error.js';
import {
  createPeerHttpClient,
  type PeerHttpClient,
  type PeerResponse,
  type PeerTlsClientOptions,
} from '../peer-transport/peer-http-client.js';

/** Manifest media types asked for from peers (plus `*∕*`, as containerd does). */
const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, '*/*'].join(', ');

/** The subset of pino's logger the mirror path uses. */
export interface PeerFetchLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Collaborators of {@link createPeerSource}. */
export interface PeerFetchDeps {
  readonly router: Router;
  readonly metrics?: Metrics;
  readonly logger?: PeerFetchLogger;
  /** TLS settings for peers advertised with `https:` registry URLs. */
  readonly tls?: PeerTlsClientOptions;
  /** The connections to peers, shared with the peer protocol. @default a new client with `tls` */
  readonly http?: PeerHttpClient;
  /**
   * Signs each request to a peer (same shape as the router's `PeerRequestSigner`): `url` is the
   * path and query, `body` is empty. The returned headers are sent along.
   */
  readonly sign?: (request: { method: string; url: string; body: string }) => Record<string, string>;
}

/** Tunables of {@link createPeerSource}; every field has its default in {@link PEER_FETCH_DEFAULTS}. */
export interface PeerFetchOptions {
  /** Budget in ms for the router to name a first holder; none by then means "no peer can serve". */
  readonly lookupTimeout?: number;
  /** How long in ms a lookup may keep finding more holders (for hedging and resumes). */
  readonly lookupWindow?: number;
  /** Holders asked for per lookup. */
  readonly lookupCount?: number;
  /** Time in ms to response headers for manifests and HEAD requests (connect included). */
  readonly headersTimeout?: number;
  /** Time in ms to response headers for blob GETs (hedging starts other peers much earlier). */
  readonly blobHeadersTimeout?: number;
  /** Overall deadline in ms of a manifest or blob-size call, across all holders. */
  readonly manifestDeadline?: number;
  /** Largest manifest body accepted, in bytes. */
  readonly maxManifestSize?: number;
  /** A body that yields no byte for this long (ms) counts as broken: switch peers. */
  readonly idleTimeout?: number;
  /** Hedge delay tracker (time to headers of blob requests). */
  readonly hedging?: LatencyTrackerOptions;
  /** First cool-down of a failing peer, in ms; doubles with each further failure. */
  readonly coolDownBase?: number;
  /** Longest cool-down, in ms. */
  readonly coolDownMax?: number;
  /** How many recently peer-fetched digests {@link PeerFetcher.servedFromPeer} remembers. */
  readonly servedCacheSize?: number;
}

/** Defaults of {@link PeerFetchOptions}, in one place. */
export const PEER_FETCH_DEFAULTS: Readonly<Required<Omit<PeerFetchOptions, 'hedging'>>> = Object.freeze({
  lookupTimeout: 20,
  lookupWindow: 500,
  lookupCount: 3,
  headersTimeout: 300,
  blobHeadersTimeout: 1_000,
  manifestDeadline: 3_000,
  maxManifestSize: 4 * 1024 * 1024,
  idleTimeout: 3_000,
  coolDownBase: 1_000,
  coolDownMax: 60_000,
  servedCacheSize: 4_096,
});

/** A {@link PeerSource} that also remembers which digests it recently fetched from peers. */
export interface PeerFetcher extends PeerSource {
  /** True when `digest` was recently served to this node by a peer (to attribute ingested bytes). */
  servedFromPeer(digest: Digest): boolean;
}

/** A {@link PeerError} that names the peer at fault. */
type PeerFailure = PeerError & { readonly peerId: string };

/** A failure of `peerId` with `reason` (the one error type of peer calls). */
function peerFailure(peerId: string, reason: PeerFailureReason, message: string): PeerFailure {
  return new PeerError(reason, message, { peerId }) as PeerFailure;
}

/** A failure this module raised about a peer (not a caller's abort or our own deadline). */
function isPeerFailure(error: unknown): error is PeerFailure {
  return error instanceof PeerError && error.peerId !== undefined;
}

function hashFor(digest: Digest): Hash {
  return createHash(digestAlgorithm(digest));
}

function digestMatches(digest: Digest, hash: Hash): boolean {
  return `${digestAlgorithm(digest)}:${hash.digest('hex')}` === digest;
}

/** Exponential, capped cool-down per peer id; a success clears it. */
class CoolDowns {
  private readonly entries = new Map<string, { failures: number; until: number }>();
  constructor(
    private readonly base: number,
    private readonly max: number,
  ) {}
  fail(id: string): void {
    // Members come and go: forget long-expired entries so the map stays as small as the cluster.
    if (this.entries.size > 1024) {
      const now = Date.now();
      for (const [key, entry] of this.entries) if (now - entry.until > this.max) this.entries.delete(key);
    }
    const failures = (this.entries.get(id)?.failures ?? 0) + 1;
    const period = Math.min(this.max, this.base * 2 ** Math.min(failures - 1, 30));
    this.entries.set(id, { failures, until: Date.now() + period });
  }
  succeed(id: string): void {
    this.entries.delete(id);
  }
  cooling(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && entry.until > Date.now();
  }
}

/**
 * Peers that served bytes not matching a blob's digest, per digest, for `ttl` ms. Unlike a
 * cool-down this has no lone-holder exception: containerd resumes a cut download with a Range
 * request and commits what it got, so the first corrupt attempt fails its pull; the retry must
 * not be sent to the same bad copy again, or the image could never be pulled while it is cached.
 */
class Quarantine {
  private readonly entries = new Map<string, number>();
  constructor(
    private readonly ttl: number,
    private readonly capacity = 4096,
  ) {}
  add(peerId: string, digest: string): void {
    const key = `${peerId} ${digest}`;
    this.entries.delete(key);
    this.entries.set(key, Date.now() + this.ttl);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }
  /** Peer ids quarantined for `digest` right now. */
  peersFor(digest: string): Set<string> {
    const now = Date.now();
    const peers = new Set<string>();
    for (const [key, until] of this.entries) {
      if (until <= now) {
        this.entries.delete(key);
        continue;
      }
      const space = key.indexOf(' ');
      if (key.slice(space + 1) === digest) peers.add(key.slice(0, space));
    }
    return peers;
  }
}

/** A small LRU set of digests. */
class RecentSet {
  private readonly items = new Map<string, true>();
  constructor(private readonly capacity: number) {}
  add(key: string): void {
    this.items.delete(key);
    this.items.set(key, true);
    if (this.items.size > this.capacity) {
      const oldest = this.items.keys().next();
      if (!oldest.done) this.items.delete(oldest.value);
    }
  }
  has(key: string): boolean {
    return this.items.has(key);
  }
}

/** Collects the holders a lookup finds, so several attempts (hedges, resumes) can walk them. */
class Holders {
  private readonly found: PeerLocation[] = [];
  private done = false;
  private wake: (() => void)[] = [];

  constructor(router: Router, key: string, count: number, signal: AbortSignal, logger?: PeerFetchLogger) {
    // Do not rely on the router alone to honour the signal: waiters must never outlive the lookup.
    signal.addEventListener(
      'abort',
      () => {
        this.done = true;
        this.notify();
      },
      { once: true },
    );
    void (async () => {
      try {
        for await (const peer of router.lookup(key, { signal, count })) {
          if (this.found.some((p) => p.id === peer.id)) continue;
          this.found.push(peer);
          this.notify();
          if (this.found.length >= count) break;
        }
      } catch (error) {
        if (!signal.aborted) logger?.debug({ key, err: error }, 'peer lookup failed');
      } finally {
        this.done = true;
        this.notify();
      }
    })();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = [];
    for (const w of wake) w();
  }

  /** The i-th holder, waiting for the lookup to find it; undefined once the lookup ended without it. */
  async at(index: number): Promise<PeerLocation | undefined> {
    while (this.found.length <= index && !this.done) {
      await new Promise<void>((resolve) => this.wake.push(resolve));
    }
    return this.found[index];
  }

  /** Whether a first holder shows up within `ms`. */
  async first(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    try {
      return (await Promise.race([this.at(0), timeout])) !== undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Holders in lookup order, minus `exclude`; peers in cool-down are skipped, unless every
   * remaining holder is cooling down: then they are tried anyway (a lone holder is never shunned).
   */
  async *candidates(exclude: ReadonlySet<string>, coolDowns: CoolDowns): AsyncGenerator<PeerLocation> {
    const cooling: PeerLocation[] = [];
    let yielded = 0;
    for (let i = 0; ; i++) {
      const peer = await this.at(i);
      if (!peer) break;
      if (exclude.has(peer.id)) continue;
      if (coolDowns.cooling(peer.id)) {
        cooling.push(peer);
        continue;
      }
      yielded++;
      yield peer;
    }
    if (yielded === 0) yield* cooling;
  }
}

/** An opened blob response from one peer, headers received, body not yet read. */
interface OpenBlob {
  readonly peer: PeerLocation;
  readonly size: number;
  readonly body: IncomingMessage;
  readonly controller: AbortController;
  /** Bytes at the start of the body to drop (a peer answered 200 to a ranged request). */
  skip: number;
}

/** A controller that aborts when `parent` does or after `ms`, whichever first; `dispose` unhooks it. */
function linkedController(
  parent: AbortSignal | undefined,
  ms?: number,
): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onAbort, { once: true });
  const timer =
    ms === undefined
      ? undefined
      : setTimeout(() => controller.abort(new Error(`deadline of ${ms} ms exceeded`)), ms);
  return {
    controller,
    dispose() {
      if (timer) clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}

const BODY_TOO_LARGE = new Error('body too large');
const BODY_STALLED = new Error('body stalled');

/**
 * Reads a whole body of at most `limit` bytes; rejects with {@link BODY_TOO_LARGE}, with
 * {@link BODY_STALLED} when no byte comes for `idle` ms, or with the stream's error.
 */
function readBody(body: IncomingMessage, limit: number, idle: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const timer = setTimeout(() => settle(BODY_STALLED), idle);
    const settle = (error: unknown): void => {
      clearTimeout(timer);
      body.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (error === undefined) resolve(Buffer.concat(chunks, total));
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) return settle(BODY_TOO_LARGE);
      chunks.push(chunk);
      timer.refresh();
    };
    const onEnd = (): void => settle(undefined);
    const onClose = (): void => settle(new Error('connection closed before the end of the body'));
    body.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

/** Maps a request error to a failure reason. */
function networkReason(error: unknown, timedOut: boolean): PeerFailureReason {
  if (timedOut) return 'timeout';
  if (error instanceof PeerError && error.reason === 'refused') return 'refused';
  return 'network';
}

/** Parses `bytes a-b/size` of a 206 response. */
function parseContentRange(
  value: string | undefined,
): { start: number; end: number; size: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) };
}

/** Creates the mirror path's {@link PeerSource}: lookups, verified manifests, hedged and resumable blobs. */
export function createPeerSource(deps: PeerFetchDeps, options: PeerFetchOptions = {}): PeerFetcher {
  const opts = { ...PEER_FETCH_DEFAULTS, ...options };
  const client = deps.http ?? createPeerHttpClient({ tls: deps.tls });
  const tracker = createLatencyTracker(options.hedging);
  const coolDowns = new CoolDowns(opts.coolDownBase, opts.coolDownMax);
  const quarantine = new Quarantine(opts.coolDownMax);
  const recent = new RecentSet(opts.servedCacheSize);
  const { router, metrics, logger } = deps;

  /** Counts and logs a failure; cools the peer down when it misbehaved. */
  const recordFailure = (operation: string, failure: PeerFailure): void => {
    metrics?.peerErrors.inc({ operation, reason: failure.reason });
    if (COOL_DOWN_REASONS.has(failure.reason)) coolDowns.fail(failure.peerId);
    const log = failure.reason === 'digest' ? logger?.warn : logger?.debug;
    log?.call(logger, { peer: failure.peerId, operation, reason: failure.reason }, failure.message);
  };

  const peerUrl = (
    peer: PeerLocation,
    request: PeerRequest,
    kind: 'manifests' | 'blobs',
    ref: string,
  ): string =>
    // A request that carried no `ns` reaches peers without one too.
    `${peer.registryUrl}/v2/${request.repository}/${kind}/${ref}` +
    (request.registry === '' ? '' : `?ns=${encodeURIComponent(request.registry)}`);

  /** Sends one request; resolves once headers arrived, within `timeout` ms. The body is left unread. */
  const send = async (
    peer: PeerLocation,
    url: string,
    init: { method: 'GET' | 'HEAD'; headers: Record<string, string> },
    timeout: number,
    signal: AbortSignal,
  ): Promise<{ response: PeerResponse; controller: AbortController }> => {
    // The controller outlives the headers wait: aborting it later cancels the body read.
    const link = linkedController(signal);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const target = new URL(url);
      const signed = deps.sign?.({ method: init.method, url: target.pathname + target.search, body: '' });
      const pending = client.request(url, {
        method: init.method,
        headers: { ...init.headers, ...signed, [MIRRORED_HEADER]: 'true', 'Accept-Encoding': 'identity' },
        signal: link.controller.signal,
      });
      // Armed after the call's synchronous part, so this process's own stalls are not blamed on the peer.
      timer = setTimeout(() => {
        timedOut = true;
        link.controller.abort(new Error('headers timeout'));
      }, timeout);
      const response = await pending;
      return { response, controller: link.controller };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw peerFailure(
        peer.id,
        networkReason(error, timedOut),
        timedOut ? `no response headers within ${timeout} ms` : `request failed: ${String(error)}`,
      );
    } finally {
      clearTimeout(timer);
      // The parent link must stay until the body is done; callers abort `controller` to release it.
      if (link.controller.signal.aborted) link.dispose();
      else link.controller.signal.addEventListener('abort', () => link.dispose(), { once: true });
    }
  };

  /** Turns a non-success status into a failure (and releases the body). */
  const statusFailure = (
    peer: PeerLocation,
    response: PeerResponse,
    controller: AbortController,
  ): PeerError => {
    controller.abort();
    if (response.status === 404) return peerFailure(peer.id, 'notfound', 'peer answered 404');
    if (response.status === 416) return peerFailure(peer.id, 'range', 'peer answered 416');
    return peerFailure(peer.id, 'status', `peer answered ${response.status}`);
  };

  /** Reads a manifest body within the size limit, a chunk at most `idle` ms apart. */
  const readBounded = async (
    peer: PeerLocation,
    response: PeerResponse,
    controller: AbortController,
  ): Promise<Buffer> => {
    const declared = Number(response.header('content-length') ?? NaN);
    if (declared > opts.maxManifestSize) {
      controller.abort();
      throw peerFailure(peer.id, 'toolarge', `manifest of ${declared} bytes exceeds ${opts.maxManifestSize}`);
    }
    let body: Buffer;
    try {
      body = await readBody(response.body, opts.maxManifestSize, opts.headersTimeout);
    } catch (error) {
      if (error === BODY_TOO_LARGE) {
        throw peerFailure(peer.id, 'toolarge', `manifest exceeds ${opts.maxManifestSize} bytes`);
      }
      if (error === BODY_STALLED) {
        throw peerFailure(peer.id, 'stall', `manifest body stalled for ${opts.headersTimeout} ms`);
      }
      throw peerFailure(peer.id, 'broken', `manifest body broke: ${String(error)}`);
    } finally {
      controller.abort();
    }
    metrics?.peerFetchedBytes.inc(body.length);
    return body;
  };

  const fetchManifest = async (
    peer: PeerLocation,
    request: PeerRequest & { readonly reference: string },
    signal: AbortSignal,
  ): Promise<PeerManifest> => {
    const { response, controller } = await send(
      peer,
      peerUrl(peer, request, 'manifests', request.reference),
      { method: 'GET', headers: { Accept: MANIFEST_ACCEPT } },
      opts.headersTimeout,
      signal,
    );
    if (response.status !== 200) throw statusFailure(peer, response, controller);
    let expected: string | undefined = request.reference;
    if (!isDigest(request.reference)) {
      expected = response.header('docker-content-digest');
      if (expected === undefined || !isDigest(expected)) {
        controller.abort();
        throw peerFailure(
          peer.id,
          'digest',
          `tag answer without a valid Docker-Content-Digest (${expected})`,
        );
      }
    }
    const digest = expected as Digest;
    const body = await readBounded(peer, response, controller);
    const hash = hashFor(digest).update(body);
    if (!digestMatches(digest, hash)) {
      throw peerFailure(peer.id, 'digest', `manifest body does not match ${digest}`);
    }
    const mediaType = manifestMediaType(response.header('content-type'), body);
    if (mediaType === undefined) {
      throw peerFailure(peer.id, 'invalid', 'manifest without a recognisable media type');
    }
    return {
      mediaType,
      digest,
      body,
      peerId: peer.id,
    };
  };

  /** Opens a blob GET on `peer` for bytes [start, end] (end undefined = to the end of the blob). */
  const openBlob = async (
    peer: PeerLocation,
    request: PeerRequest & { readonly digest: Digest },
    start: number,
    end: number | undefined,
    signal: AbortSignal,
  ): Promise<OpenBlob> => {
    const headers: Record<string, string> = {};
    if (start > 0 || end !== undefined) headers.Range = `bytes=${start}-${end ?? ''}`;
    const began = performance.now();
    const { response, controller } = await send(
      peer,
      peerUrl(peer, request, 'blobs', request.digest),
      { method: 'GET', headers },
      opts.blobHeadersTimeout,
      signal,
    );
    let size: number;
    let skip = 0;
    if (response.status === 206) {
      const range = parseContentRange(response.header('content-range'));
      if (
        !range ||
        range.start !== start ||
        (end !== undefined && range.end !== Math.min(end, range.size - 1))
      ) {
        controller.abort();
        throw peerFailure(peer.id, 'range', `unexpected Content-Range ${response.header('content-range')}`);
      }
      if (end === undefined && range.end !== range.size - 1) {
        controller.abort();
        throw peerFailure(peer.id, 'range', `short Content-Range ${response.header('content-range')}`);
      }
      size = range.size;
    } else if (response.status === 200) {
      size = Number(response.header('content-length') ?? NaN);
      if (!Number.isSafeInteger(size) || size < 0) {
        controller.abort();
        throw peerFailure(peer.id, 'status', 'blob answer without Content-Length');
      }
      skip = start; // the peer ignored our Range: drop the bytes before it
    } else {
      throw statusFailure(peer, response, controller);
    }
    tracker.observe(performance.now() - began);
    return { peer, size, body: response.body, controller, skip };
  };

  /** Wraps an attempt so its failure is recorded once, unless it was merely cancelled. */
  const recorded =
    <A extends unknown[], T>(operation: string, fn: (...args: [...A, AbortSignal]) => Promise<T>) =>
    async (...args: [...A, AbortSignal]): Promise<T> => {
      const signal = args[args.length - 1] as AbortSignal;
      try {
        const value = await fn(...args);
        return value;
      } catch (error) {
        if (isPeerFailure(error) && !signal.aborted) recordFailure(operation, error);
        throw error;
      }
    };

  const tryManifest = recorded('manifest', fetchManifest);
  const tryBlob = recorded('blob', openBlob);

  const headBlob = recorded(
    'blob-size',
    async (peer: PeerLocation, request: PeerRequest & { readonly digest: Digest }, signal: AbortSignal) => {
      const { response, controller } = await send(
        peer,
        peerUrl(peer, request, 'blobs', request.digest),
        { method: 'HEAD', headers: {} },
        opts.headersTimeout,
        signal,
      );
      controller.abort();
      if (response.status !== 200) throw statusFailure(peer, response, controller);
      const size = Number(response.header('content-length') ?? NaN);
      if (!Number.isSafeInteger(size) || size < 0)
        throw peerFailure(peer.id, 'status', 'HEAD without Content-Length');
      return { size, peer };
    },
  );

  return {
    servedFromPeer(digest) {
      return recent.has(digest);
    },

    async manifest(request, signal) {
      const reference = request.reference;
      if (!isRepository(request.repository) || !(isDigest(reference) || isTag(reference))) {
        return undefined;
      }
      const key = isDigest(reference)
        ? reference
        : imageName(request.registry, request.repository, reference);
      const op = linkedController(signal, opts.manifestDeadline);
      const lookup = linkedController(op.controller.signal, opts.lookupWindow);
      try {
        const holders = new Holders(router, key, opts.lookupCount, lookup.controller.signal, logger);
        if (!(await holders.first(opts.lookupTimeout))) return undefined;
        for await (const peer of holders.candidates(new Set(), coolDowns)) {
          try {
            const manifest = await tryManifest(peer, request, op.controller.signal);
            coolDowns.succeed(peer.id);
            recent.add(manifest.digest);
            return manifest;
          } catch (error) {
            if (!isPeerFailure(error)) break; // our deadline or the caller's abort
          }
        }
        if (signal.aborted) throw signal.reason;
        return undefined;
      } finally {
        lookup.controller.abort();
        lookup.dispose();
        op.controller.abort();
        op.dispose();
      }
    },

    async blobSize(request, signal) {
      if (!isRepository(request.repository) || !isDigest(request.digest)) return undefined;
      const op = linkedController(signal, opts.manifestDeadline);
      const lookup = linkedController(op.controller.signal, opts.lookupWindow);
      try {
        const holders = new Holders(
          router,
          request.digest,
          opts.lookupCount,
          lookup.controller.signal,
          logger,
        );
        if (!(await holders.first(opts.lookupTimeout))) return undefined;
        const won = await hedge(
          holders.candidates(quarantine.peersFor(request.digest), coolDowns),
          (peer, s) => headBlob(peer, request, s),
          {
            delay: () => tracker.delay(),
            signal: op.controller.signal,
          },
        );
        coolDowns.succeed(won.value.peer.id);
        return won.value.size;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof HedgeExhaustedError || op.controller.signal.aborted) return undefined;
        throw error;
      } finally {
        lookup.controller.abort();
        lookup.dispose();
        op.controller.abort();
        op.dispose();
      }
    },

    async blob(request, signal) {
      const range = request.range;
      if (!isRepository(request.repository) || !isDigest(request.digest)) return undefined;
      if (range && (!(range.start >= 0) || (range.end !== undefined && range.end < range.start)))
        return undefined;
      // `op` lives as long as the returned stream: it carries the lookup (for resumes) and every fetch.
      const op = linkedController(signal);
      const lookup = linkedController(op.controller.signal, opts.lookupWindow);
      const release = (): void => {
        lookup.controller.abort();
        lookup.dispose();
        op.controller.abort();
        op.dispose();
      };
      const holders = new Holders(router, request.digest, opts.lookupCount, lookup.controller.signal, logger);
      let opened: OpenBlob;
      const bad = quarantine.peersFor(request.digest);
      try {
        if (!(await holders.first(opts.lookupTimeout))) {
          release();
          return undefined;
        }
        const won = await hedge(
          holders.candidates(bad, coolDowns),
          (peer, s) => tryBlob(peer, request, range?.start ?? 0, range?.end, s),
          {
            delay: () => tracker.delay(),
            signal: op.controller.signal,
            dispose: (late) => late.controller.abort(),
          },
        );
        opened = won.value;
      } catch (error) {
        release();
        if (signal.aborted) throw signal.reason;
        if (error instanceof HedgeExhaustedError) return undefined;
        throw error;
      }
      const start = range?.start ?? 0;
      if (start >= opened.size && !(start === 0 && opened.size === 0)) {
        opened.controller.abort();
        release();
        return undefined;
      }
      const end = Math.min(range?.end ?? opened.size - 1, opened.size - 1);
      recent.add(request.digest);
      const stream = new PeerBlobStream({
        request,
        source: opened,
        start,
        end,
        verify: range === undefined,
        holders,
        excluded: bad,
        reopen: (peer, from, s) => tryBlob(peer, request, from, end, s),
        signal: op.controller.signal,
        release,
        onBytes: (n) => metrics?.peerFetchedBytes.inc(n),
        onFailure: (failure) => {
          if (failure.reason === 'digest') quarantine.add(failure.peerId, request.digest);
          recordFailure('blob', failure);
        },
        coolDowns,
        idleTimeout: opts.idleTimeout,
      });
      return { size: opened.size, range: { start, end }, stream, peerId: opened.peer.id } satisfies PeerBlob;
    },
  };
}

/**
 * The media type of a manifest: the peer's Content-Type when it names a specific type, else what
 * the document itself says (peers that answer `application/json`); undefined when neither tells.
 */
function manifestMediaType(contentType: string | undefined, body: Buffer): string | undefined {
  const declared = (contentType ?? '').split(';')[0]?.trim() ?? '';
  if (declared.startsWith('application/vnd.')) return declared;
  return detectManifestMediaType(body);
}

/** What {@link PeerBlobStream} needs to serve one range and resume it elsewhere. */
interface PeerBlobStreamInit {
  readonly request: PeerRequest & { readonly digest: Digest };
  readonly source: OpenBlob;
  readonly start: number;
  readonly end: number;
  /** Hash the bytes and fail at the end on a mismatch (only when the whole blob is streamed). */
  readonly verify: boolean;
  readonly holders: Holders;
  /** Peers never to resume from (quarantined for this digest). */
  readonly excluded: ReadonlySet<string>;
  readonly reopen: (peer: PeerLocation, from: number, signal: AbortSignal) => Promise<OpenBlob>;
  readonly signal: AbortSignal;
  readonly release: () => void;
  readonly onBytes: (n: number) => void;
  readonly onFailure: (failure: PeerFailure) => void;
  readonly coolDowns: CoolDowns;
  readonly idleTimeout: number;
}

/**
 * Resolves once `source`'s response has ended (its connection is then pooled again), or was cut:
 * a peer that sends more than it was asked loses its connection.
 */
function responseEnded(source: OpenBlob | undefined): Promise<void> {
  if (source === undefined || source.body.readableEnded || source.body.destroyed) return Promise.resolve();
  const body = source.body;
  return new Promise<void>((resolve) => {
    const done = (): void => {
      body.off('end', done).off('close', done).off('error', done).off('data', extra);
      resolve();
    };
    const extra = (): void => {
      source.controller.abort();
      done();
    };
    body.on('end', done).on('close', done).on('error', done).on('data', extra);
    body.resume();
  });
}

/**
 * One continuous stream of bytes [start, end] of a blob, pulled from a peer only as fast as the
 * consumer reads (backpressure: the peer's response is paused while the consumer is full). When a
 * peer breaks, stalls or ends early, it continues from the next holder at the next missing byte;
 * the consumer never notices.
 */
class PeerBlobStream extends Readable {
  private source: OpenBlob | undefined;
  private position: number;
  private readonly hash: BlobHasher | undefined;
  private readonly failed: Set<string>;
  private readonly contributors = new Set<string>();
  private resuming = false;
  private completing = false;
  private attached = false;
  /** The consumer's buffer is full (push returned false) and it has not asked for more yet. */
  private consumerFull = false;
  /** The hashing worker is too far behind: the peer waits until it catches up. */
  private waitingForHash = false;
  /** Fires when the current source, read from, yields no byte for `idleTimeout` ms. */
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly init: PeerBlobStreamInit) {
    super({ highWaterMark: 256 * 1024 });
    this.source = init.source;
    this.failed = new Set(init.excluded);
    this.position = init.start;
    this.hash = init.verify
      ? createBlobHasher(digestAlgorithm(init.request.digest), init.end - init.start + 1)
      : undefined;
    if (init.signal.aborted) this.destroy(init.signal.reason as Error);
    else init.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => {
    this.destroy(this.init.signal.reason instanceof Error ? this.init.signal.reason : new Error('aborted'));
  };

  override _read(): void {
    this.consumerFull = false;
    this.pull();
  }

  /** Lets bytes flow from the current source (or opens the next one), unless something is full. */
  private pull(): void {
    if (this.destroyed || this.completing || this.consumerFull || this.waitingForHash) return;
    if (this.position > this.init.end) return this.complete(); // an empty range
    const source = this.source;
    if (source === undefined) {
      this.resumeElsewhere();
      return;
    }
    if (!this.attached) this.attach(source);
    this.armIdleTimer(source);
    source.body.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearIdleTimer();
    this.detach();
    this.source?.controller.abort();
    this.source = undefined;
    this.hash?.cancel();
    this.init.signal.removeEventListener('abort', this.onAbort);
    this.init.release();
    callback(error);
  }

  private attach(source: OpenBlob): void {
    this.attached = true;
    source.body
      .on('data', this.onData)
      .on('end', this.onEnd)
      .on('error', this.onError)
      .on('close', this.onEnd);
  }

  private detach(): void {
    if (!this.attached || this.source === undefined) return;
    this.attached = false;
    this.source.body
      .off('data', this.onData)
      .off('end', this.onEnd)
      .off('error', this.onError)
      .off('close', this.onEnd);
  }

  private armIdleTimer(source: OpenBlob): void {
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.source !== source) return;
      this.fail(peerFailure(source.peer.id, 'stall', `no byte for ${this.init.idleTimeout} ms`));
    }, this.init.idleTimeout);
  }

  private clearIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private readonly onData = (chunk: Buffer): void => {
    const source = this.source;
    if (source === undefined || this.destroyed) return;
    this.idleTimer?.refresh();
    this.init.onBytes(chunk.length);
    let bytes = chunk;
    if (source.skip > 0) {
      const dropped = Math.min(source.skip, bytes.length);
      source.skip -= dropped;
      bytes = bytes.subarray(dropped);
    }
    const wanted = this.init.end - this.position + 1;
    if (bytes.length > wanted) bytes = bytes.subarray(0, wanted);
    if (bytes.length === 0) return;
    this.contributors.add(source.peer.id);
    const hash = this.hash;
    hash?.update(bytes);
    this.position += bytes.length;
    // The last bytes are held back until the digest is checked, so a corrupt blob never completes.
    if (this.position > this.init.end) return this.complete(bytes);
    if (!this.push(bytes)) this.consumerFull = true;
    if (hash && hash.backlog > BACKLOG_HIGH && !this.waitingForHash) {
      this.waitingForHash = true;
      hash.onDrain(() => {
        this.waitingForHash = false;
        this.pull();
      });
    }
    if (this.consumerFull || this.waitingForHash) {
      // Stop reading the peer, and stop blaming it for the silence.
      source.body.pause();
      this.clearIdleTimer();
    }
  };

  /** The body ended (or its connection closed) before the last byte of the range. */
  private readonly onEnd = (): void => {
    const source = this.source;
    if (source === undefined || this.destroyed) return;
    this.fail(
      peerFailure(source.peer.id, 'broken', `stream ended at byte ${this.position} of ${this.init.end + 1}`),
    );
  };

  private readonly onError = (error: Error): void => {
    const source = this.source;
    if (source === undefined || this.destroyed) return;
    this.fail(peerFailure(source.peer.id, 'broken', `stream broke: ${String(error)}`));
  };

  /**
   * Every byte is in: ends the stream with `last` once the digest matches (when verifying) and
   * the peer's response has ended too, which hands its connection back to the pool.
   */
  private complete(last?: Buffer): void {
    if (this.destroyed || this.completing) return;
    this.completing = true;
    this.clearIdleTimer();
    const source = this.source;
    this.detach();
    this.source = undefined;
    const digest = this.init.request.digest;
    const verified = this.hash
      ? this.hash.digest().then((hex) => `${digestAlgorithm(digest)}:${hex}` === digest)
      : Promise.resolve(true);
    Promise.all([verified, responseEnded(source)]).then(
      ([matches]) => {
        if (this.destroyed) return;
        if (!matches) {
          for (const id of this.contributors) {
            this.init.onFailure(peerFailure(id, 'digest', `blob does not match ${digest}`));
          }
          this.destroy(new Error(`blob ${digest} from peers does not match its digest`));
          return;
        }
        if (source) this.init.coolDowns.succeed(source.peer.id);
        if (last) this.push(last);
        this.push(null);
      },
      (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** Records the current source's failure, forgets it and goes on from the next holder. */
  private fail(failure: PeerFailure): void {
    this.clearIdleTimer();
    this.detach();
    this.source?.controller.abort();
    this.source = undefined;
    this.failed.add(failure.peerId);
    this.init.onFailure(failure);
    this.resumeElsewhere();
  }

  /** Opens the rest of the range on the next holder, then carries on reading. */
  private resumeElsewhere(): void {
    if (this.resuming || this.destroyed) return;
    this.resuming = true;
    this.openNext().then(
      (opened) => {
        this.resuming = false;
        if (this.destroyed) {
          opened.controller.abort();
          return;
        }
        this.source = opened;
        this.pull();
      },
      (error: unknown) => {
        this.resuming = false;
        this.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** The next holder that has not failed yet, opened at the next missing byte. */
  private async openNext(): Promise<OpenBlob> {
    for await (const peer of this.init.holders.candidates(this.failed, this.init.coolDowns)) {
      if (this.destroyed) break;
      try {
        const opened = await this.init.reopen(peer, this.position, this.init.signal);
        if (opened.size !== this.init.source.size) {
          opened.controller.abort();
          this.fail(
            peerFailure(peer.id, 'range', `size ${opened.size} differs from ${this.init.source.size}`),
          );
          continue;
        }
        return opened;
      } catch (error) {
        if (!isPeerFailure(error)) throw error;
        this.failed.add(peer.id);
      }
    }
    throw new Error(
      `blob ${this.init.request.digest}: every peer failed at byte ${this.position} of ${this.init.source.size}`,
    );
  }
}
