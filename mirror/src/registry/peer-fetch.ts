// The mirror path's PeerSource: looks a key up, then fetches from the holders it finds, verified
// manifests one holder after another, blobs hedged across holders and streamed by a
// PeerBlobStream. Peers that fail are cooled down (PeerHealth), corrupt copies quarantined.
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock, type ClockTimer } from '../clock/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import { digestAlgorithm, isDigest } from '../oci/digest.js';
import { detectManifestMediaType, MANIFEST_MEDIA_TYPES } from '../oci/media-types.js';
import { imageName, isRepository, isTag } from '../oci/reference.js';
import type { PeerLocation, Router } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import { createLatencyTracker, hedge, HedgeExhaustedError, type LatencyTrackerOptions } from './hedging.js';
import { Holders, type PeerFetchLogger } from './holders.js';
import { PeerBlobStream, type OpenBlob } from './peer-blob-stream.js';
import { isPeerFailure, peerFailure, type PeerFailure } from './peer-failure.js';
import type { PeerBlob, PeerManifest, PeerRequest, PeerSource } from './peer-source.js';
import { Quarantine } from './quarantine.js';
import { MIRRORED_HEADER } from '../peer-transport/headers.js';
import { COOL_DOWN_REASONS, PeerError, type PeerFailureReason } from '../peer-transport/peer-error.js';
import { PeerHealth } from '../peer-transport/peer-health.js';
import {
  createPeerHttpClient,
  type PeerHttpClient,
  type PeerResponse,
  type PeerTlsClientOptions,
} from '../peer-transport/peer-http-client.js';

/** Manifest media types asked for from peers (plus `*∕*`, as containerd does). */
const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, '*/*'].join(', ');

export type { PeerFetchLogger };

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
  /** Times every deadline, timeout, cool-down and quarantine. @default systemClock */
  readonly clock?: Clock;
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

function hashFor(digest: Digest): Hash {
  return createHash(digestAlgorithm(digest));
}

function digestMatches(digest: Digest, hash: Hash): boolean {
  return `${digestAlgorithm(digest)}:${hash.digest('hex')}` === digest;
}

/** A controller that aborts when `parent` does or after `ms`, whichever first; `dispose` unhooks it. */
function linkedController(
  clock: Clock,
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
      : clock.setTimeout(() => controller.abort(new Error(`deadline of ${ms} ms exceeded`)), ms);
  return {
    controller,
    dispose() {
      timer?.cancel();
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
function readBody(clock: Clock, body: IncomingMessage, limit: number, idle: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const timer = clock.setTimeout(() => settle(BODY_STALLED), idle);
    const settle = (error: unknown): void => {
      timer.cancel();
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
  const clock = deps.clock ?? systemClock;
  const client = deps.http ?? createPeerHttpClient({ tls: deps.tls, clock });
  const tracker = createLatencyTracker(options.hedging);
  const health = new PeerHealth({ base: opts.coolDownBase, max: opts.coolDownMax, clock });
  const quarantine = new Quarantine({ ttl: opts.coolDownMax, clock });
  // Digests recently fetched from peers, most recent kept.
  const recent = new LRUCache<string, true>({ max: opts.servedCacheSize });
  const { router, metrics, logger } = deps;

  /** Counts and logs a failure; cools the peer down when it misbehaved. */
  const recordFailure = (operation: string, failure: PeerFailure): void => {
    metrics?.peerErrors.inc({ operation, reason: failure.reason });
    if (COOL_DOWN_REASONS.has(failure.reason)) health.fail(failure.peerId);
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
    const link = linkedController(clock, signal);
    let timedOut = false;
    let timer: ClockTimer | undefined;
    try {
      const target = new URL(url);
      const signed = deps.sign?.({ method: init.method, url: target.pathname + target.search, body: '' });
      const pending = client.request(url, {
        method: init.method,
        headers: { ...init.headers, ...signed, [MIRRORED_HEADER]: 'true', 'Accept-Encoding': 'identity' },
        signal: link.controller.signal,
      });
      // Armed after the call's synchronous part, so this process's own stalls are not blamed on the peer.
      timer = clock.setTimeout(() => {
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
      timer?.cancel();
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
      body = await readBody(clock, response.body, opts.maxManifestSize, opts.headersTimeout);
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
    const began = clock.now();
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
    tracker.observe(clock.now() - began);
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

  /**
   * The holders of `key`, looked up under an operation that ends with `signal` or after
   * `deadline`; `release` ends the operation and the lookup.
   */
  function startLookup(
    key: string,
    signal: AbortSignal,
    deadline?: number,
  ): { op: AbortController; holders: Holders; release(): void } {
    const op = linkedController(clock, signal, deadline);
    const lookup = linkedController(clock, op.controller.signal, opts.lookupWindow);
    const holders = new Holders(router, key, opts.lookupCount, lookup.controller.signal, clock, logger);
    return {
      op: op.controller,
      holders,
      release() {
        lookup.controller.abort();
        lookup.dispose();
        op.controller.abort();
        op.dispose();
      },
    };
  }

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
      const { op, holders, release } = startLookup(key, signal, opts.manifestDeadline);
      try {
        if (!(await holders.first(opts.lookupTimeout))) return undefined;
        for await (const peer of holders.candidates(new Set(), health)) {
          try {
            const manifest = await tryManifest(peer, request, op.signal);
            health.succeed(peer.id);
            recent.set(manifest.digest, true);
            return manifest;
          } catch (error) {
            if (!isPeerFailure(error)) break; // our deadline or the caller's abort
          }
        }
        if (signal.aborted) throw signal.reason;
        return undefined;
      } finally {
        release();
      }
    },

    async blobSize(request, signal) {
      if (!isRepository(request.repository) || !isDigest(request.digest)) return undefined;
      const { op, holders, release } = startLookup(request.digest, signal, opts.manifestDeadline);
      try {
        if (!(await holders.first(opts.lookupTimeout))) return undefined;
        const won = await hedge(
          holders.candidates(quarantine.peersFor(request.digest), health),
          (peer, s) => headBlob(peer, request, s),
          {
            delay: () => tracker.delay(),
            clock,
            signal: op.signal,
          },
        );
        health.succeed(won.value.peer.id);
        return won.value.size;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof HedgeExhaustedError || op.signal.aborted) return undefined;
        throw error;
      } finally {
        release();
      }
    },

    async blob(request, signal) {
      const range = request.range;
      if (!isRepository(request.repository) || !isDigest(request.digest)) return undefined;
      if (range && (!(range.start >= 0) || (range.end !== undefined && range.end < range.start)))
        return undefined;
      // `op` lives as long as the returned stream: it carries the lookup (for resumes) and every fetch.
      const { op, holders, release } = startLookup(request.digest, signal);
      let opened: OpenBlob;
      const bad = quarantine.peersFor(request.digest);
      try {
        if (!(await holders.first(opts.lookupTimeout))) {
          release();
          return undefined;
        }
        const won = await hedge(
          holders.candidates(bad, health),
          (peer, s) => tryBlob(peer, request, range?.start ?? 0, range?.end, s),
          {
            delay: () => tracker.delay(),
            clock,
            signal: op.signal,
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
      recent.set(request.digest, true);
      const stream = new PeerBlobStream({
        request,
        source: opened,
        start,
        end,
        verify: range === undefined,
        holders,
        excluded: bad,
        reopen: (peer, from, s) => tryBlob(peer, request, from, end, s),
        signal: op.signal,
        release,
        onBytes: (n) => metrics?.peerFetchedBytes.inc(n),
        onFailure: (failure) => {
          if (failure.reason === 'digest') quarantine.add(failure.peerId, request.digest);
          recordFailure('blob', failure);
        },
        health,
        idleTimeout: opts.idleTimeout,
        clock,
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
