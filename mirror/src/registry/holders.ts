// The holders one lookup finds, collected as they arrive so several attempts at one request
// (hedges, resumes after a broken stream) can walk them in order.
import type { Clock, ClockTimer } from '../clock/clock.js';
import type { PeerHealth } from '../peer-transport/peer-health.js';
import type { PeerLocation, Router } from '../routing/router.js';

/** The subset of pino's logger the mirror path uses. */
export interface PeerFetchLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Collects the holders a lookup finds, so several attempts (hedges, resumes) can walk them. */
export class Holders {
  private readonly found: PeerLocation[] = [];
  private done = false;
  private wake: (() => void)[] = [];

  constructor(
    router: Router,
    key: string,
    count: number,
    signal: AbortSignal,
    private readonly clock: Clock,
    logger?: PeerFetchLogger,
  ) {
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
    let timer: ClockTimer | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(undefined), ms);
    });
    try {
      return (await Promise.race([this.at(0), timeout])) !== undefined;
    } finally {
      timer?.cancel();
    }
  }

  /**
   * Holders in lookup order, minus `exclude`; peers in cool-down are skipped, unless every
   * remaining holder is cooling down: then they are tried anyway (a lone holder is never shunned).
   */
  async *candidates(exclude: ReadonlySet<string>, health: PeerHealth): AsyncGenerator<PeerLocation> {
    const cooling: PeerLocation[] = [];
    let yielded = 0;
    for (let i = 0; ; i++) {
      const peer = await this.at(i);
      if (!peer) break;
      if (exclude.has(peer.id)) continue;
      if (health.coolingDown(peer.id)) {
        cooling.push(peer);
        continue;
      }
      yielded++;
      yield peer;
    }
    if (yielded === 0) yield* cooling;
  }
}
