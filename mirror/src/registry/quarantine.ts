// Peers that served bytes not matching a blob's digest, per digest, for `ttl` ms. Unlike a
// cool-down this has no lone-holder exception: containerd resumes a cut download with a Range
// request and commits what it got, so the first corrupt attempt fails its pull; the retry must
// not be sent to the same bad copy again, or the image could never be pulled while it is cached.
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../clock/clock.js';

/** Options of {@link Quarantine}. */
export interface QuarantineOptions {
  /** How long a peer stays quarantined for a digest, in ms. */
  readonly ttl: number;
  /** Digests remembered at most (the least recently quarantined are forgotten first). @default 4096 */
  readonly capacity?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Peer ids quarantined per digest. */
export class Quarantine {
  // Per digest: peer id → when its quarantine ends.
  readonly #digests: LRUCache<string, Map<string, number>>;
  readonly #ttl: number;
  readonly #clock: Clock;

  constructor(options: QuarantineOptions) {
    this.#ttl = options.ttl;
    this.#clock = options.clock ?? systemClock;
    const clock = this.#clock;
    this.#digests = new LRUCache({
      max: options.capacity ?? 4096,
      ttl: options.ttl,
      // Read the time on every check (no cached "now"), from the injected clock.
      ttlResolution: 0,
      perf: { now: () => clock.now() },
    });
  }

  /** Quarantines `peerId` for `digest`. */
  add(peerId: string, digest: string): void {
    const peers = this.#digests.get(digest) ?? new Map<string, number>();
    peers.set(peerId, this.#clock.now() + this.#ttl);
    this.#digests.set(digest, peers);
  }

  /** Peer ids quarantined for `digest` right now. */
  peersFor(digest: string): Set<string> {
    const now = this.#clock.now();
    const quarantined = new Set<string>();
    for (const [peerId, until] of this.#digests.get(digest) ?? []) if (until > now) quarantined.add(peerId);
    return quarantined;
  }
}
