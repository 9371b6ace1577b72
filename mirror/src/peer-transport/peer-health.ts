// A local view of peers' health: a peer whose calls fail is avoided for a cool-down that grows
// with each further failure (the one backoff), and forgiven by its next success.
import { backoff } from '../clock/backoff.js';
import { systemClock, type Clock } from '../clock/clock.js';

/** Options of {@link PeerHealth}. */
export interface PeerHealthOptions {
  /** Cool-down after the first failure, in ms; doubles with each further failure. */
  readonly base: number;
  /** Longest cool-down, in ms. */
  readonly max: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Entries kept before long-expired ones are forgotten (members come and go). @default 1024 */
  readonly capacity?: number;
}

interface Entry {
  failures: number;
  until: number;
}

/** Cool-downs per peer id (a member id, `host:port`). */
export class PeerHealth {
  readonly #entries = new Map<string, Entry>();
  readonly #base: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #capacity: number;

  constructor(options: PeerHealthOptions) {
    this.#base = options.base;
    this.#max = options.max;
    this.#clock = options.clock ?? systemClock;
    this.#capacity = options.capacity ?? 1024;
  }

  /** A call to `id` failed: starts or extends its cool-down; returns its failures in a row. */
  fail(id: string): number {
    const now = this.#clock.now();
    // Forget long-expired entries so the map stays about as small as the cluster.
    if (this.#entries.size > this.#capacity) {
      for (const [key, entry] of this.#entries) if (now - entry.until > this.#max) this.#entries.delete(key);
    }
    const failures = (this.#entries.get(id)?.failures ?? 0) + 1;
    this.#entries.set(id, { failures, until: now + backoff(failures, this.#base, this.#max) });
    return failures;
  }

  /** A call to `id` succeeded: clears its failures; true when that ended a running cool-down. */
  succeed(id: string): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    this.#entries.delete(id);
    return entry.until > this.#clock.now();
  }

  /** True while calls to `id` should be avoided. */
  coolingDown(id: string): boolean {
    return this.coolingUntil(id) > this.#clock.now();
  }

  /** When `id`'s cool-down ends (ms on the clock), 0 when it never failed. */
  coolingUntil(id: string): number {
    return this.#entries.get(id)?.until ?? 0;
  }

  /** Failures in a row of `id` (0 after a success). */
  failures(id: string): number {
    return this.#entries.get(id)?.failures ?? 0;
  }

  /** Forgets `id` (it left the cluster). */
  forget(id: string): void {
    this.#entries.delete(id);
  }
}
