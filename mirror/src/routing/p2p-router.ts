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
import { PeerError } from '../peer-transport/peer-error.js';
import { createHttpPeerClient, type PeerClient } from './peer-client.js';
import { MAX_KEYS_PER_BATCH, type PeerCaller } from './protocol.js';
import { rankOwners } from './rendezvous.js';
import type { LookupOptions, PeerLocation, Router } from './router.js';

/** Key of the start-up lookups that open connections to the members (no content has it). */
const WARM_UP_KEY = `sha256:${'0'.repeat(64)}`;
/** Longest wait for those start-up lookups. */
const WARM_UP_TIMEOUT_MS = 1_000;
/** Probes in a row that must time out before an owner counts as down (a refusal counts at once). */
const PROBE_TIMEOUTS_TO_FAIL = 2;

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
  const probeInterval = options.probeIntervalMs ?? 1000;
  const maxProbes = options.maxProbesPerTick ?? 8;
  // How long a restarted owner may still lack keys: its holders re-send them on their next tick.
  const refillGrace = 2 * tickMs;
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
  // Every request names this node and its index share, so a peer can tell when it restarted.
  const caller: PeerCaller = { id: selfId, boot: index.bootId };
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
  // What this node knows of each member's liveness: when it last answered or called us, its boot
  // id, when that boot id last changed, and the restarted members whose keys are still to resend.
  const heard = new Map<string, number>();
  const boots = new Map<string, string>();
  const restartedAt = new Map<string, number>();
  let refill = new Set<string>();
  const probing = new Set<string>();
  // Owners with an advertise or withdraw call in flight (its answer tells more than a probe), and
  // probes in a row that timed out per owner.
  const busy = new Map<string, number>();
  const probeTimeouts = new Map<string, number>();

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

  // A member answered (or called us): it is alive. When its boot id changed, it restarted with an
  // empty index share: the next tick re-sends it every key it owns, and it is routable at once.
  function heardFrom(id: string, boot: string | undefined): void {
    const at = Date.now();
    heard.set(id, at);
    probeTimeouts.delete(id);
    if (boot === undefined) return;
    const known = boots.get(id);
    boots.set(id, boot);
    if (known === undefined || known === boot) return;
    restartedAt.set(id, at);
    refill.add(id);
    membership.reportSuccess(id);
    logger.info({ member: id }, 'member restarted; re-sending the keys it owns');
  }

  function failure(operation: string, member: Member, error: unknown): void {
    const reason = error instanceof PeerError ? error.reason : 'network';
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
        others.map(async (member) => {
          const answer = await client.lookup(member.routerUrl, WARM_UP_KEY, bounded.signal, caller);
          heardFrom(member.id, answer.boot);
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
          busy.set(ownerId, (busy.get(ownerId) ?? 0) + 1);
          try {
            await sendBatches(kind, owner, keys, linked.signal);
          } finally {
            const left = busy.get(ownerId)! - 1;
            if (left === 0) busy.delete(ownerId);
            else busy.set(ownerId, left);
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
        heardFrom(ownerId, answer.boot);
      } catch (error) {
        // The owner goes into cool-down; the next tick re-ranks and sends to the next owner.
        failure(kind, owner, error);
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

  // Liveness of the members that own this node's keys: those not heard from within the probe
  // interval get one cheap lookup each, longest silent first, at most `maxProbes` per tick. A
  // failed probe cools the owner down, so the next tick re-ranks its keys to the next members.
  function probe(at: number, ownerSets: ReadonlySet<string>): void {
    const due: Member[] = [];
    const ids = new Set<string>();
    for (const owners of ownerSets) for (const id of owners.split(' ')) ids.add(id);
    for (const id of ids) {
      if (id === selfId || probing.has(id) || busy.has(id) || at - (heard.get(id) ?? 0) < probeInterval)
        continue;
      if (membership.coolingDown(id)) continue;
      const member = membership.get(id);
      if (member) due.push(member);
    }
    due.sort((a, b) => (heard.get(a.id) ?? 0) - (heard.get(b.id) ?? 0));
    for (const member of due.slice(0, maxProbes)) {
      probing.add(member.id);
      client
        .lookup(member.routerUrl, WARM_UP_KEY, lifetime.signal, caller)
        .then(
          (answer) => {
            membership.reportSuccess(member.id);
            heardFrom(member.id, answer.boot);
          },
          (error: unknown) => {
            // One timeout may be this node's or the owner's load (a busy event loop): only a
            // second one in a row counts. A refused connection (a crashed process) counts at once.
            const timedOut = error instanceof PeerError && error.reason === 'timeout';
            const strikes = timedOut ? (probeTimeouts.get(member.id) ?? 0) + 1 : PROBE_TIMEOUTS_TO_FAIL;
            if (strikes < PROBE_TIMEOUTS_TO_FAIL) {
              probeTimeouts.set(member.id, strikes);
              metrics?.peerErrors.inc({ operation: 'probe', reason: 'timeout' });
              return;
            }
            probeTimeouts.delete(member.id);
            failure('probe', member, error);
          },
        )
        .finally(() => probing.delete(member.id));
    }
    // Forget members that left (the maps hold one entry per member ever heard from).
    if (heard.size > 2 * membership.members().length + 16) {
      for (const id of heard.keys()) {
        if (membership.get(id)) continue;
        heard.delete(id);
        boots.delete(id);
        restartedAt.delete(id);
        probeTimeouts.delete(id);
      }
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
    const at = Date.now();
    const moved = reconcile();
    void warmUp(lifetime.signal);
    const restarted = refill;
    refill = new Set();
    const { groups: refresh, ownerSets } = scan(at, restarted);
    merge(refresh, moved);
    probe(at, ownerSets);
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
          .lookup(owner.routerUrl, key, lifetime.signal)
          .then(
            (response) => {
              membership.reportSuccess(owner.id);
              heardFrom(owner.id, response.boot);
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
              askSpare();
              continue;
            }
            anyAnswer = true;
            if (
              answer.holders!.length === 0 &&
              Date.now() - (restartedAt.get(answer.owner.id) ?? 0) < refillGrace
            )
              askSpare();
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

    peerSeen(peer) {
      if (peer.id === selfId || membership.get(peer.id) === undefined) return;
      heardFrom(peer.id, peer.boot);
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
