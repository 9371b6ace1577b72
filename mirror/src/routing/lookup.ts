// One lookup: asks a key's owners (rendezvous-ranked among the available members) in parallel,
// yields holders as answers come, within the lookup budget, and asks a spare in place of each
// owner that fails or restarted moments ago. Holders in cool-down come last.
import type { Clock } from '../clock/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import type { IndexStore } from './index-store.js';
import { keyKind } from './keys.js';
import type { Liveness } from './liveness.js';
import type { Member, Membership } from './membership.js';
import type { PeerClient } from './peer-client.js';
import { rankOwners } from './rendezvous.js';
import type { LookupOptions, PeerLocation } from './router.js';

/** What a lookup works with: the router's parts and settings. */
export interface LookupContext {
  readonly selfId: string;
  /** Owners per key (R). */
  readonly replicas: number;
  /** Budget in ms for the first useful owner answer. */
  readonly lookupTimeout: number;
  /** How long a restarted owner may still lack keys, in ms: a spare is asked too meanwhile. */
  readonly refillGrace: number;
  readonly membership: Membership;
  readonly index: IndexStore;
  readonly client: PeerClient;
  readonly liveness: Liveness;
  readonly metrics?: Pick<Metrics, 'lookups' | 'lookupDuration'>;
  readonly clock: Clock;
  /** The router's lifetime: calls are not cancelled when a lookup gives up (see below). */
  readonly lifetime: AbortSignal;
}

type Answer = {
  readonly owner: Member;
  readonly holders?: readonly PeerLocation[];
  readonly failed?: boolean;
};

/** Holders of `key`, best first, at most `count` (default 3). */
export async function* lookupHolders(
  ctx: LookupContext,
  key: string,
  lookupOptions: LookupOptions,
): AsyncGenerator<PeerLocation> {
  const { clock, membership, index, client, liveness, metrics, selfId, replicas, lookupTimeout } = ctx;
  const { signal } = lookupOptions;
  const count = lookupOptions.count ?? 3;
  const started = clock.now();
  let yielded = 0;
  let anyAnswer = false;
  let anyFailure = false;
  const record = (result: 'found' | 'notfound' | 'error'): void => {
    metrics?.lookups.inc({ result });
    metrics?.lookupDuration.observe({ result }, (clock.now() - started) / 1000);
  };
  if (signal.aborted || keyKind(key) === undefined) {
    record('notfound');
    return;
  }
  const seen = new Set<string>([selfId]);
  const deferred: PeerLocation[] = [];
  // New holders, cooling-down ones held back so they come last.
  const fresh = (holders: readonly PeerLocation[]): PeerLocation[] => {
    const out: PeerLocation[] = [];
    for (const h of holders) {
      if (seen.has(h.id)) continue;
      seen.add(h.id);
      const location = { id: h.id, registryUrl: h.registryUrl };
      if (membership.coolingDown(h.id)) deferred.push(location);
      else out.push(location);
    }
    return out;
  };

  const ranked = rankOwners(key, membership.available(), replicas * 2) as Member[];
  const owners = ranked.slice(0, replicas);
  // The next-ranked members, best first: one is asked in place of each owner that fails, or
  // that restarted moments ago and may not be refilled yet. A holder that saw an owner down
  // placed the key with them.
  const spares = ranked.slice(replicas);
  const remote = owners.filter((o) => o.id !== selfId);
  const answers: Answer[] = [];
  let wake: (() => void) | undefined;
  let pending = 0;
  const ask = (owner: Member): void => {
    if (owner.id === selfId) {
      answers.push({ owner, holders: index.get(key) });
      return;
    }
    pending++;
    // Calls are not cancelled when the lookup gives up: the client's own timeout bounds
    // them, and letting them finish keeps the pooled connection alive.
    client
      .lookup(owner.routerUrl, key, ctx.lifetime)
      .then(
        (response) => {
          membership.reportSuccess(owner.id);
          liveness.heardFrom(owner.id, response.boot);
          answers.push({ owner, holders: response.holders[key] ?? [] });
        },
        (error: unknown) => {
          liveness.failure('lookup', owner, error);
          answers.push({ owner, failed: true });
        },
      )
      .finally(() => {
        pending--;
        wake?.();
      });
  };
  const askSpare = (): void => {
    const spare = spares.shift();
    if (spare && !signal.aborted) ask(spare);
  };
  try {
    if (remote.length < owners.length) {
      anyAnswer = true;
      for (const holder of fresh(index.get(key))) {
        if (yielded === 0) record('found');
        yield holder;
        if (++yielded >= count) return;
      }
    }
    if (remote.length > 0 && yielded < count) {
      for (const owner of remote) ask(owner);
      let deadline = started + lookupTimeout;
      while (yielded < count && (pending > 0 || answers.length > 0)) {
        if (answers.length === 0) {
          const left = deadline - clock.now();
          if (left <= 0 || signal.aborted) break;
          await new Promise<void>((resolve) => {
            const done = (): void => {
              t.cancel();
              signal.removeEventListener('abort', done);
              wake = undefined;
              resolve();
            };
            const t = clock.setTimeout(done, left);
            signal.addEventListener('abort', done, { once: true });
            wake = done;
          });
          continue;
        }
        const answer = answers.shift()!;
        if (answer.failed) {
          anyFailure = true;
          askSpare();
          continue;
        }
        anyAnswer = true;
        if (answer.holders!.length === 0 && liveness.restartedWithin(answer.owner.id, ctx.refillGrace))
          askSpare();
        const holders = fresh(answer.holders!);
        if (holders.length > 0 && yielded === 0) {
          record('found');
          // Later owners get the same grace again: their answers only add holders.
          deadline = clock.now() + lookupTimeout;
        }
        for (const holder of holders) {
          if (signal.aborted) return;
          yield holder;
          if (++yielded >= count) return;
        }
      }
    }
    for (const holder of deferred) {
      if (signal.aborted || yielded >= count) break;
      if (yielded === 0) record('found');
      yield holder;
      yielded++;
    }
  } finally {
    wake = undefined;
    if (yielded === 0) record(anyFailure && !anyAnswer ? 'error' : 'notfound');
  }
}
