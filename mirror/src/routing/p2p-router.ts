// The cluster router: membership from the platform, a content index spread over the members by
// rendezvous hashing (R owners per key), and a one-round-trip lookup that asks a key's owners in
// parallel. See docs/routing.md for the design and its measured costs.
import { setMaxListeners } from 'node:events';
import type { Metrics } from '../metrics/metrics.js';
import { callSignal } from './abort.js';
import { createIndexStore, type IndexStore } from './index-store.js';
import { keyKind, type KeyKind } from './keys.js';
import { silentLogger, type RoutingLogger } from './logger.js';
import {
  createMembership,
  parseMemberAddress,
  type Member,
  type MemberSource,
  type Membership,
  type MembershipOptions,
} from './membership.js';
import { createHttpPeerClient, PeerCallError, type PeerClient } from './peer-client.js';
import { MAX_KEYS_PER_BATCH } from './protocol.js';
import { rankOwners } from './rendezvous.js';
import type { LookupOptions, PeerLocation, Router } from './router.js';

/** Key of the start-up lookups that open connections to the members (no content has it). */
const WARM_UP_KEY = `sha256:${'0'.repeat(64)}`;
/** Longest wait for those start-up lookups. */
const WARM_UP_TIMEOUT_MS = 1_000;

/** This node as the cluster sees it. */
export interface P2PRouterSelf {
  /** Member id: `advertiseHost:routerPort` (how the member source lists this node). */
  readonly id: string;
  /** Base URL of this node's registry API, handed to peers that look up our keys. */
  readonly registryUrl: string;
  /** Base URL of this node's peer protocol (informational: a node never calls itself over the network). */
  readonly routerUrl?: string;
}

/** Dependencies of `createP2PRouter`. */
export interface P2PRouterDeps {
  readonly members: MemberSource;
  readonly self: P2PRouterSelf;
  readonly metrics?: Pick<
    Metrics,
    'members' | 'advertisedKeys' | 'indexedKeys' | 'lookups' | 'lookupDuration' | 'peerErrors'
  >;
  readonly logger?: RoutingLogger;
  /** The peer transport. @default createHttpPeerClient() */
  readonly client?: PeerClient;
  /** This node's index share (the peer server serves the same object). @default a new one */
  readonly index?: IndexStore;
}

/** Options of `createP2PRouter` (durations in ms unless named otherwise). */
export interface P2PRouterOptions {
  /** Owners per key (R). @default 3 */
  readonly replicas?: number;
  /** Budget for the first useful owner answer of a lookup. @default 20 */
  readonly lookupTimeoutMs?: number;
  /** Lifetime of an advertisement at its owners, in seconds. @default 300 */
  readonly ttlSeconds?: number;
  /** Mean time between refreshes of one key; each key is jittered ±25 %. @default ttl × 0.4 */
  readonly refreshIntervalMs?: number;
  /** How often due refreshes, membership changes and expiry are processed. @default 1000 */
  readonly tickMs?: number;
  /** Most keys per advertise/withdraw request. @default 1000 */
  readonly batchSize?: number;
  /** Membership refresh interval, cool-downs and drop thresholds. */
  readonly membership?: MembershipOptions;
  /** How often expired index entries are swept. @default 30000 */
  readonly sweepIntervalMs?: number;
  /** Random source for jitter (tests pin it). @default Math.random */
  readonly random?: () => number;
}

/** The P2P router: a `Router` with a lifecycle and a few operational hooks. */
export interface P2PRouter extends Router {
  /** Loads the member set, then runs refreshes and rebalancing until `close`. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops every timer; with `withdraw`, first withdraws every advertised key (graceful shutdown). */
  close(options?: { withdraw?: boolean; signal?: AbortSignal }): Promise<void>;
  /** Refreshes the member set now and re-sends the keys whose owners changed; resolves when sent. */
  sync(signal?: AbortSignal): Promise<void>;
  /** Tells the router a fetch from `peerId` failed (puts it in cool-down, like a failed call). */
  reportPeerFailure(peerId: string): void;
  /** Number of keys this node currently advertises. */
  advertisedCount(): number;
  readonly index: IndexStore;
  readonly membership: Membership;
}

interface Advertised {
  /** Owner ids (space separated, interned) the key was last sent to. */
  owners: string;
  /** When the key is next refreshed (ms). */
  due: number;
}

type Answer = {
  readonly owner: Member;
  readonly holders?: readonly PeerLocation[];
  readonly failed?: boolean;
};

/** Creates the P2P router of this node. Call `start` once the peer server listens. */
export function createP2PRouter(deps: P2PRouterDeps, options: P2PRouterOptions = {}): P2PRouter {
  const replicas = options.replicas ?? 3;
  const lookupTimeout = options.lookupTimeoutMs ?? 20;
  const ttlSeconds = options.ttlSeconds ?? 300;
  const refreshInterval = options.refreshIntervalMs ?? ttlSeconds * 400;
  const tickMs = options.tickMs ?? 1000;
  const batchSize = Math.min(options.batchSize ?? MAX_KEYS_PER_BATCH, MAX_KEYS_PER_BATCH);
  const sweepInterval = options.sweepIntervalMs ?? 30_000;
  const random = options.random ?? Math.random;
  const logger = deps.logger ?? silentLogger;
  const metrics = deps.metrics;
  const client = deps.client ?? createHttpPeerClient();
  const index = deps.index ?? createIndexStore();
  if (refreshInterval * 1.25 >= ttlSeconds * 1000) {
    throw new Error(
      `refreshIntervalMs (${refreshInterval}) × 1.25 must be shorter than ttlSeconds (${ttlSeconds} s)`,
    );
  }
  const selfId = parseMemberAddress(deps.self.id);
  const selfLocation: PeerLocation = { id: selfId, registryUrl: deps.self.registryUrl };
  const membership = createMembership(deps.members, selfId, options.membership, logger);

  const advertised = new Map<string, Advertised>();
  const advertisedKinds: Record<KeyKind, number> = { digest: 0, tag: 0 };
  const ownerStrings = new Map<string, string>();
  const lifetime = new AbortController();
  // Every call in flight links its own signal to this one (removed when it ends): more than the
  // default 10 listeners is normal here, not a leak.
  setMaxListeners(0, lifetime.signal);
  let lastSignature = '';
  let lastSweep = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;

  const internOwners = (owners: readonly Member[]): string => {
    const joined = owners.map((o) => o.id).join(' ');
    let interned = ownerStrings.get(joined);
    if (interned === undefined) {
      if (ownerStrings.size > 10_000) ownerStrings.clear();
      ownerStrings.set(joined, joined);
      interned = joined;
    }
    return interned;
  };
  const nextDue = (at: number): number => at + refreshInterval * (0.75 + 0.5 * random());

  function failure(operation: string, member: Member, error: unknown): void {
    const reason = error instanceof PeerCallError ? error.reason : 'network';
    if (reason === 'aborted') return;
    metrics?.peerErrors.inc({ operation, reason });
    membership.reportFailure(member.id);
    logger.debug({ member: member.id, operation, reason, err: error }, 'peer call failed');
  }

  // A node's first lookups would otherwise pay for new connections (and cold code paths) inside
  // the 20 ms lookup budget and miss: a node that just joined sent its first pulls upstream. One
  // cheap lookup per member at start opens the pooled connections; failures are not counted.
  // Members that join (or come back from a cool-down, perhaps restarted) are warmed up the same
  // way on the first tick that sees them.
  let warmed = new Set<string>();
  async function warmUp(signal: AbortSignal): Promise<void> {
    const available = membership.available();
    const others = available.filter((member) => member.id !== selfId && !warmed.has(member.id));
    warmed = new Set(available.map((member) => member.id));
    if (others.length === 0) return;
    const bounded = callSignal([signal], WARM_UP_TIMEOUT_MS);
    try {
      await Promise.allSettled(
        others.map((member) => client.lookup(member.routerUrl, WARM_UP_KEY, bounded.signal)),
      );
    } finally {
      bounded.dispose();
    }
  }

  function chunks(keys: readonly string[]): string[][] {
    const out: string[][] = [];
    for (let i = 0; i < keys.length; i += batchSize) out.push(keys.slice(i, i + batchSize));
    return out;
  }

  // Sends each owner its keys: one request per batch, owners in parallel, batches of one owner in
  // sequence (so a large resync never opens more than one request per peer).
  async function send(
    kind: 'advertise' | 'withdraw',
    groups: Map<string, string[]>,
    signal?: AbortSignal,
  ): Promise<void> {
    const linked = callSignal([signal, lifetime.signal]);
    try {
      await Promise.all(
        [...groups].map(async ([ownerId, keys]) => {
          if (ownerId === selfId) {
            if (kind === 'advertise') index.add(selfLocation, keys, ttlSeconds);
            else index.remove(selfId, keys);
            return;
          }
          const owner = membership.get(ownerId);
          if (!owner) return;
          for (const batch of chunks(keys)) {
            try {
              if (kind === 'advertise') {
                await client.advertise(
                  owner.routerUrl,
                  { holder: selfLocation, ttlSeconds, keys: batch },
                  linked.signal,
                );
              } else {
                await client.withdraw(owner.routerUrl, { holder: selfLocation, keys: batch }, linked.signal);
              }
              membership.reportSuccess(ownerId);
            } catch (error) {
              // The owner goes into cool-down; the next tick re-ranks and sends to the next owner.
              failure(kind, owner, error);
              return;
            }
          }
        }),
      );
    } finally {
      linked.dispose();
    }
  }

  function group(groups: Map<string, string[]>, ownerId: string, key: string): void {
    const list = groups.get(ownerId);
    if (list) list.push(key);
    else groups.set(ownerId, [key]);
  }

  // Re-ranks every advertised key when the routable member set changed; sends each key only to
  // the owners it did not have before (old owners let the entries expire).
  function reconcile(force = false): Map<string, string[]> {
    const available = membership.available();
    const signature = available.map((m) => m.id).join(' ');
    const groups = new Map<string, string[]>();
    if (signature === lastSignature && !force) return groups;
    lastSignature = signature;
    for (const [key, state] of advertised) {
      const owners = internOwners(rankOwners(key, available, replicas) as Member[]);
      if (owners === state.owners) continue;
      const before = new Set(state.owners.split(' '));
      for (const id of owners.split(' ')) if (!before.has(id)) group(groups, id, key);
      state.owners = owners;
    }
    return groups;
  }

  function dueRefreshes(at: number): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const [key, state] of advertised) {
      if (state.due > at) continue;
      state.due = nextDue(at);
      for (const id of state.owners.split(' ')) group(groups, id, key);
    }
    return groups;
  }

  function updateGauges(): void {
    if (!metrics) return;
    metrics.members.set(membership.members().length);
    for (const kind of ['digest', 'tag'] as const) {
      metrics.advertisedKeys.set({ kind }, advertisedKinds[kind]);
      metrics.indexedKeys.set({ kind }, index.counts()[kind]);
    }
  }

  async function tick(): Promise<void> {
    const at = Date.now();
    const moved = reconcile();
    void warmUp(lifetime.signal);
    const refresh = dueRefreshes(at);
    for (const [id, keys] of moved) for (const key of keys) group(refresh, id, key);
    if (refresh.size > 0) await send('advertise', refresh);
    if (at - lastSweep >= sweepInterval) {
      lastSweep = at;
      index.sweep();
    }
    updateGauges();
  }

  function scheduleTick(): void {
    if (lifetime.signal.aborted) return;
    timer = setTimeout(() => {
      ticking = tick()
        .catch((error: unknown) => logger.error({ err: error }, 'routing tick failed'))
        .finally(() => {
          ticking = undefined;
          scheduleTick();
        });
    }, tickMs);
    timer.unref();
  }

  const validKeys = (keys: readonly string[]): string[] =>
    keys.filter((key) => {
      if (keyKind(key) !== undefined) return true;
      logger.warn({ key: key.slice(0, 100) }, 'not a routing key; ignored');
      return false;
    });

  const router: P2PRouter = {
    index,
    membership,

    ready: () => membership.ready(),

    advertisedCount: () => advertised.size,

    async advertise(keys, signal) {
      const available = membership.available();
      const groups = new Map<string, string[]>();
      const at = Date.now();
      for (const key of validKeys(keys)) {
        if (advertised.has(key)) continue;
        const owners = rankOwners(key, available, replicas) as Member[];
        advertised.set(key, { owners: internOwners(owners), due: nextDue(at) });
        advertisedKinds[keyKind(key)!] += 1;
        for (const owner of owners) group(groups, owner.id, key);
      }
      await send('advertise', groups, signal);
      updateGauges();
    },

    async withdraw(keys, signal) {
      const groups = new Map<string, string[]>();
      for (const key of keys) {
        const state = advertised.get(key);
        if (!state) continue;
        advertised.delete(key);
        advertisedKinds[keyKind(key)!] -= 1;
        for (const id of state.owners.split(' ')) group(groups, id, key);
      }
      await send('withdraw', groups, signal);
      updateGauges();
    },

    async *lookup(key: string, lookupOptions: LookupOptions): AsyncGenerator<PeerLocation> {
      const { signal } = lookupOptions;
      const count = lookupOptions.count ?? 3;
      const started = performance.now();
      let yielded = 0;
      let anyAnswer = false;
      let anyFailure = false;
      const record = (result: 'found' | 'notfound' | 'error'): void => {
        metrics?.lookups.inc({ result });
        metrics?.lookupDuration.observe({ result }, (performance.now() - started) / 1000);
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

      const owners = rankOwners(key, membership.available(), replicas) as Member[];
      const remote = owners.filter((o) => o.id !== selfId);
      const answers: Answer[] = [];
      let wake: (() => void) | undefined;
      let pending = 0;
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
          for (const owner of remote) {
            pending++;
            // Calls are not cancelled when the lookup gives up: the client's own timeout bounds
            // them, and letting them finish keeps the pooled connection alive.
            client
              .lookup(owner.routerUrl, key, lifetime.signal)
              .then(
                (response) => {
                  membership.reportSuccess(owner.id);
                  answers.push({ owner, holders: response.holders[key] ?? [] });
                },
                (error: unknown) => {
                  failure('lookup', owner, error);
                  answers.push({ owner, failed: true });
                },
              )
              .finally(() => {
                pending--;
                wake?.();
              });
          }
          let deadline = started + lookupTimeout;
          while (yielded < count && (pending > 0 || answers.length > 0)) {
            if (answers.length === 0) {
              const left = deadline - performance.now();
              if (left <= 0 || signal.aborted) break;
              await new Promise<void>((resolve) => {
                const done = (): void => {
                  clearTimeout(t);
                  signal.removeEventListener('abort', done);
                  wake = undefined;
                  resolve();
                };
                const t = setTimeout(done, left);
                signal.addEventListener('abort', done, { once: true });
                wake = done;
              });
              continue;
            }
            const answer = answers.shift()!;
            if (answer.failed) {
              anyFailure = true;
              continue;
            }
            anyAnswer = true;
            const holders = fresh(answer.holders!);
            if (holders.length > 0 && yielded === 0) {
              record('found');
              // Later owners get the same grace again: their answers only add holders.
              deadline = performance.now() + lookupTimeout;
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
    },

    async start(signal) {
      const stop = signal ? AbortSignal.any([signal, lifetime.signal]) : lifetime.signal;
      await membership.start(stop);
      await warmUp(stop);
      lastSignature = '';
      await tick();
      scheduleTick();
    },

    async sync(signal) {
      const stop = callSignal([signal, lifetime.signal]);
      try {
        await membership.refresh(stop.signal);
        await send('advertise', reconcile(), stop.signal);
        updateGauges();
      } finally {
        stop.dispose();
      }
    },

    reportPeerFailure(peerId) {
      membership.reportFailure(peerId);
    },

    async close(closeOptions = {}) {
      if (closeOptions.withdraw && advertised.size > 0) {
        await router
          .withdraw([...advertised.keys()], closeOptions.signal ?? AbortSignal.timeout(2000))
          .catch(() => {});
      }
      lifetime.abort();
      if (timer) clearTimeout(timer);
      await ticking;
    },
  };
  return router;
}
