// The cluster router: membership from the platform, a content index spread over the members by
// rendezvous hashing (R owners per key), and a one-round-trip lookup that asks a key's owners in
// parallel. See docs/routing.md for the design and its measured costs.
import { setMaxListeners } from 'node:events';
import { systemClock, type Clock, type ClockTimer } from '../clock/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import { callSignal } from './abort.js';
import { createIndexStore, type IndexStore } from './index-store.js';
import { createLiveness, PROBE_KEY } from './liveness.js';
import { lookupHolders, type LookupContext } from './lookup.js';
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
import { createHttpPeerClient, type PeerClient } from './peer-client.js';
import { MAX_KEYS_PER_BATCH, type PeerCaller } from './protocol.js';
import { rankOwners } from './rendezvous.js';
import type { LookupOptions, PeerLocation, Router } from './router.js';

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
  /** This node's index share (the peer server serves the same object). @default a new one on `clock` */
  readonly index?: IndexStore;
  /**
   * Times ticks, refreshes, probes, lookup budgets and (unless `options.membership.clock` is
   * set) the membership's refreshes and cool-downs. @default systemClock
   */
  readonly clock?: Clock;
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
  /**
   * Owners of this node's keys not heard from (no answer, no request) for this long are probed
   * with one cheap lookup, so a crashed owner's keys move to the next-ranked members. @default 1000
   */
  readonly probeIntervalMs?: number;
  /** Most probes per tick: bounds the probe load per member in large clusters. @default 8 */
  readonly maxProbesPerTick?: number;
}

/** The P2P router: a `Router` with a lifecycle and a few operational hooks. */
export interface P2PRouter extends Router {
  /** Loads the member set, then runs refreshes and rebalancing until `close`. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops every timer; with `withdraw`, first withdraws every advertised key (graceful shutdown). */
  close(options?: { withdraw?: boolean; signal?: AbortSignal }): Promise<void>;
  /** Refreshes the member set now and re-sends the keys whose owners changed; resolves when sent. */
  sync(signal?: AbortSignal): Promise<void>;
  /**
   * Tells the router a member named itself in a request to this node's peer server (wire it to
   * `buildPeerApp`'s `onCaller`): a new boot id means it restarted with an empty index share.
   */
  peerSeen(caller: PeerCaller): void;
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
  const clock = deps.clock ?? systemClock;
  const index = deps.index ?? createIndexStore({ now: () => clock.now() });
  if (refreshInterval * 1.25 >= ttlSeconds * 1000) {
    throw new Error(
      `refreshIntervalMs (${refreshInterval}) × 1.25 must be shorter than ttlSeconds (${ttlSeconds} s)`,
    );
  }
  const selfId = parseMemberAddress(deps.self.id);
  const selfLocation: PeerLocation = { id: selfId, registryUrl: deps.self.registryUrl };
  // Every request names this node and its index share, so a peer can tell when it restarted.
  const caller: PeerCaller = { id: selfId, boot: index.bootId };
  const membership = createMembership(deps.members, selfId, { clock, ...options.membership }, logger);
  const lifetime = new AbortController();
  // Every call in flight links its own signal to this one (removed when it ends): more than the
  // default 10 listeners is normal here, not a leak.
  setMaxListeners(0, lifetime.signal);
  const liveness = createLiveness(
    selfId,
    { membership, client, caller, metrics, logger, clock, signal: lifetime.signal },
    { probeIntervalMs: options.probeIntervalMs ?? 1000, maxProbesPerTick: options.maxProbesPerTick ?? 8 },
  );
  const lookupContext: LookupContext = {
    selfId,
    replicas,
    lookupTimeout,
    // How long a restarted owner may still lack keys: its holders re-send them on their next tick.
    refillGrace: 2 * tickMs,
    membership,
    index,
    client,
    liveness,
    metrics,
    clock,
    lifetime: lifetime.signal,
  };

  const advertised = new Map<string, Advertised>();
  const advertisedKinds: Record<KeyKind, number> = { digest: 0, tag: 0 };
  const ownerStrings = new Map<string, string>();
  let lastSignature = '';
  let lastSweep = clock.now();
  let timer: ClockTimer | undefined;
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
        others.map(async (member) => {
          const answer = await client.lookup(member.routerUrl, PROBE_KEY, bounded.signal, caller);
          liveness.heardFrom(member.id, answer.boot);
        }),
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
          const release = liveness.busy(ownerId);
          try {
            await sendBatches(kind, owner, keys, linked.signal);
          } finally {
            release();
          }
        }),
      );
    } finally {
      linked.dispose();
    }
  }

  async function sendBatches(
    kind: 'advertise' | 'withdraw',
    owner: Member,
    keys: string[],
    signal: AbortSignal,
  ): Promise<void> {
    const ownerId = owner.id;
    for (const batch of chunks(keys)) {
      try {
        const answer =
          kind === 'advertise'
            ? await client.advertise(
                owner.routerUrl,
                { holder: selfLocation, ttlSeconds, keys: batch },
                signal,
                caller,
              )
            : await client.withdraw(owner.routerUrl, { holder: selfLocation, keys: batch }, signal, caller);
        membership.reportSuccess(ownerId);
        liveness.heardFrom(ownerId, answer.boot);
      } catch (error) {
        // The owner goes into cool-down; the next tick re-ranks and sends to the next owner.
        liveness.failure(kind, owner, error);
        return;
      }
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

  // One pass over the advertised keys: the keys due for refresh (to all their owners), the keys
  // owned by members that restarted (to those members), and every owner string in use.
  function scan(
    at: number,
    restarted: ReadonlySet<string>,
  ): { groups: Map<string, string[]>; ownerSets: Set<string> } {
    const groups = new Map<string, string[]>();
    const ownerSets = new Set<string>();
    for (const [key, state] of advertised) {
      ownerSets.add(state.owners);
      if (state.due <= at) {
        state.due = nextDue(at);
        for (const id of state.owners.split(' ')) group(groups, id, key);
      } else if (restarted.size > 0) {
        for (const id of state.owners.split(' ')) if (restarted.has(id)) group(groups, id, key);
      }
    }
    return { groups, ownerSets };
  }

  // Adds `from`'s keys to `into`, without sending a key twice to one owner.
  function merge(into: Map<string, string[]>, from: Map<string, string[]>): void {
    for (const [id, keys] of from) {
      const list = into.get(id);
      if (!list) {
        into.set(id, keys);
        continue;
      }
      const have = new Set(list);
      for (const key of keys) if (!have.has(key)) list.push(key);
    }
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
    const at = clock.now();
    const moved = reconcile();
    void warmUp(lifetime.signal);
    const restarted = liveness.takeRestarted();
    const { groups: refresh, ownerSets } = scan(at, restarted);
    merge(refresh, moved);
    liveness.probe([...ownerSets].flatMap((owners) => owners.split(' ')));
    if (refresh.size > 0) await send('advertise', refresh);
    if (at - lastSweep >= sweepInterval) {
      lastSweep = at;
      index.sweep();
    }
    updateGauges();
  }

  function scheduleTick(): void {
    if (lifetime.signal.aborted) return;
    timer = clock
      .setTimeout(() => {
        ticking = tick()
          .catch((error: unknown) => logger.error({ err: error }, 'routing tick failed'))
          .finally(() => {
            ticking = undefined;
            scheduleTick();
          });
      }, tickMs)
      .unref();
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
      const at = clock.now();
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

    lookup: (key: string, lookupOptions: LookupOptions) => lookupHolders(lookupContext, key, lookupOptions),

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

    peerSeen(peer) {
      if (peer.id === selfId || membership.get(peer.id) === undefined) return;
      liveness.heardFrom(peer.id, peer.boot);
    },

    async close(closeOptions = {}) {
      if (closeOptions.withdraw && advertised.size > 0) {
        await router
          .withdraw([...advertised.keys()], closeOptions.signal ?? AbortSignal.timeout(2000))
          .catch(() => {});
      }
      lifetime.abort();
      timer?.cancel();
      await ticking;
    },
  };
  return router;
}
