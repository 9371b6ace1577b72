// The in-memory Router fake: several MemoryRouters join one MemoryNetwork (a shared table of who
// holds what). It has the observable behaviour of the real router — self excluded, withdraw,
// expiry when a holder stops refreshing — without sockets, hashing or timers.
import type { LookupOptions, PeerLocation, Router } from '../src/routing/router.js';

interface Holding {
  readonly router: MemoryRouter;
}

/** The shared "cluster" MemoryRouters join. */
export class MemoryNetwork {
  readonly #holdings = new Map<string, Map<string, Holding>>();
  readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Creates a router for `self` that has joined this network. */
  join(self: PeerLocation, options: { ttlMs?: number } = {}): MemoryRouter {
    return new MemoryRouter(this, self, options.ttlMs ?? 300_000);
  }

  /** @internal Records `router` as a holder of `key`. */
  hold(key: string, router: MemoryRouter): void {
    let holders = this.#holdings.get(key);
    if (!holders) this.#holdings.set(key, (holders = new Map()));
    holders.set(router.self.id, { router });
  }

  /** @internal Forgets `router` as a holder of `key`. */
  release(key: string, router: MemoryRouter): void {
    const holders = this.#holdings.get(key);
    if (holders?.get(router.self.id)?.router === router) holders.delete(router.self.id);
    if (holders?.size === 0) this.#holdings.delete(key);
  }

  /** Live holders of `key` (a crashed router's entries live on until its TTL runs out). */
  holders(key: string): PeerLocation[] {
    const at = this.now();
    return [...(this.#holdings.get(key)?.values() ?? [])]
      .filter((h) => h.router.aliveAt(at))
      .map((h) => ({ id: h.router.self.id, registryUrl: h.router.self.registryUrl }));
  }
}

/** A Router backed by a MemoryNetwork; `crash()` and `leave()` simulate a node going away. */
export class MemoryRouter implements Router {
  readonly #network: MemoryNetwork;
  readonly #keys = new Set<string>();
  readonly #ttlMs: number;
  #diedAt: number | undefined;
  #left = false;

  constructor(
    network: MemoryNetwork,
    readonly self: PeerLocation,
    ttlMs: number,
  ) {
    this.#network = network;
    this.#ttlMs = ttlMs;
  }

  /** @internal True while this router's advertisements count at time `at`. */
  aliveAt(at: number): boolean {
    if (this.#left) return false;
    return this.#diedAt === undefined || at - this.#diedAt < this.#ttlMs;
  }

  ready(): boolean {
    return this.#diedAt === undefined && !this.#left;
  }

  async *lookup(key: string, options: LookupOptions): AsyncGenerator<PeerLocation> {
    const count = options.count ?? 3;
    let yielded = 0;
    for (const holder of this.#network.holders(key)) {
      if (options.signal.aborted || yielded >= count) return;
      if (holder.id === this.self.id) continue;
      yield holder;
      yielded++;
    }
  }

  async advertise(keys: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!this.ready()) return;
    for (const key of keys) {
      this.#keys.add(key);
      this.#network.hold(key, this);
    }
  }

  async withdraw(keys: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    for (const key of keys) {
      this.#keys.delete(key);
      this.#network.release(key, this);
    }
  }

  /** Keys this router advertises. */
  advertised(): string[] {
    return [...this.#keys];
  }

  /** Stops without withdrawing: the network forgets this router's keys after the TTL. */
  crash(): void {
    this.#diedAt ??= this.#network.now();
  }

  /** Leaves gracefully: every key is withdrawn at once. */
  leave(): void {
    for (const key of this.#keys) this.#network.release(key, this);
    this.#keys.clear();
    this.#left = true;
  }
}
