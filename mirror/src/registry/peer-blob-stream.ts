// One blob range streamed from peers: pulled only as fast as the consumer reads, hashed on the
// way when it is the whole blob, and resumed from the next holder when a peer breaks or stalls.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Clock, ClockTimer } from '../clock/clock.js';
import { digestAlgorithm } from '../oci/digest.js';
import type { PeerHealth } from '../peer-transport/peer-health.js';
import type { PeerLocation } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import { BACKLOG_HIGH, createBlobHasher, type BlobHasher } from './blob-hasher.js';
import type { Holders } from './holders.js';
import { isPeerFailure, peerFailure, type PeerFailure } from './peer-failure.js';
import type { PeerRequest } from './peer-source.js';

/** An opened blob response from one peer, headers received, body not yet read. */
export interface OpenBlob {
  readonly peer: PeerLocation;
  readonly size: number;
  readonly body: IncomingMessage;
  readonly controller: AbortController;
  /** Bytes at the start of the body to drop (a peer answered 200 to a ranged request). */
  skip: number;
}

/** What {@link PeerBlobStream} needs to serve one range and resume it elsewhere. */
export interface PeerBlobStreamInit {
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
  /** Peers' cool-downs: skipped when resuming, cleared by a completed download. */
  readonly health: PeerHealth;
  readonly idleTimeout: number;
  readonly clock: Clock;
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
export class PeerBlobStream extends Readable {
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
  private idleTimer: ClockTimer | undefined;

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
    this.idleTimer = this.init.clock.setTimeout(() => {
      this.idleTimer = undefined;
      if (this.source !== source) return;
      this.fail(peerFailure(source.peer.id, 'stall', `no byte for ${this.init.idleTimeout} ms`));
    }, this.init.idleTimeout);
  }

  private clearIdleTimer(): void {
    this.idleTimer?.cancel();
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
        if (source) this.init.health.succeed(source.peer.id);
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
    for await (const peer of this.init.holders.candidates(this.failed, this.init.health)) {
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
