// Who is in the cluster. A Kubernetes cluster already knows its members, so no gossip or DHT:
// a MemberSource lists router addresses (headless Service DNS, a static list),
// and Membership keeps the current set, refreshed on an interval, with a local view of health:
// a member whose calls fail is skipped for a growing cool-down and dropped after repeated
// failures or after being absent from the source for a few refreshes.
import { Resolver } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { systemClock, type Clock } from '../clock/clock.js';
import { PeerHealth } from '../peer-transport/peer-health.js';
import { hashMembers, type HashedMember } from './rendezvous.js';
import { silentLogger, type RoutingLogger } from './logger.js';

/** One cluster member: `id` is its router address `host:port` (IPv6 in brackets). */
export interface Member extends HashedMember {
  /** Base URL of its peer protocol, e.g. `http://10.0.0.7:5001`. */
  readonly routerUrl: string;
}

/** Lists the router addresses (`host:port`) of the cluster's members. */
export interface MemberSource {
  /** A short description for logs, e.g. `dns:peili.kube-system.svc`. */
  readonly name: string;
  list(signal: AbortSignal): Promise<string[]>;
}

/** The member id of `host` and `port`: `host:port`, IPv6 addresses in brackets. */
export function memberId(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIPv6(bare) ? `[${bare.toLowerCase()}]:${port}` : `${host}:${port}`;
}

/** Parses `host:port` (`[v6]:port` for IPv6) into its normalised member id; throws on anything else. */
export function parseMemberAddress(address: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[2]) : 0;
  if (!match || port < 1 || port > 65535)
    throw new Error(`invalid member address ${JSON.stringify(address)}: expected host:port`);
  return memberId(match[1]!, port);
}

function toMember(id: string, scheme: 'http' | 'https'): Member {
  const [hashed] = hashMembers([id]);
  return { ...hashed!, routerUrl: `${scheme}://${id}` };
}

/** A static member source whose list tests (and bare-metal setups) can replace at runtime. */
export interface StaticMemberSource extends MemberSource {
  set(addresses: readonly string[]): void;
}

/** A member source from a fixed list of `host:port` addresses (validated now, not at refresh). */
export function createStaticMembers(addresses: readonly string[]): StaticMemberSource {
  let current = addresses.map(parseMemberAddress);
  return {
    name: 'static',
    async list() {
      return [...current];
    },
    set(next) {
      current = next.map(parseMemberAddress);
    },
  };
}

/** The two DNS queries a DNS member source makes (node:dns/promises `Resolver` fits). */
export interface DnsResolve {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  cancel?(): void;
}

/** Options of `createDnsMembers`. */
export interface DnsMembersOptions {
  /** The headless Service name, e.g. `peili.kube-system.svc.cluster.local`. */
  readonly name: string;
  /** The router port every member listens on. */
  readonly port: number;
  /** DNS servers (`ip` or `ip:port`); the system's when omitted. */
  readonly servers?: readonly string[];
  /** Per-query timeout in ms. @default 1000 */
  readonly timeoutMs?: number;
  /** Replaces the resolver (tests). Called once per refresh. */
  readonly resolver?: () => DnsResolve;
}

const EMPTY_ANSWER = new Set(['ENODATA', 'ENOTFOUND', 'ENONAME']);

/**
 * A member source from the A and AAAA records of a headless Service: needs no RBAC, includes
 * not-ready pods when the Service sets `publishNotReadyAddresses`, and covers both IP families.
 * A family with no records is empty; the refresh fails only when both queries fail.
 */
export function createDnsMembers(options: DnsMembersOptions): MemberSource {
  const makeResolver =
    options.resolver ??
    (() => {
      const resolver = new Resolver({ timeout: options.timeoutMs ?? 1000, tries: 2 });
      if (options.servers) resolver.setServers([...options.servers]);
      return resolver;
    });
  return {
    name: `dns:${options.name}`,
    async list(signal) {
      const resolver = makeResolver();
      const cancel = (): void => resolver.cancel?.();
      signal.addEventListener('abort', cancel, { once: true });
      try {
        const answers = await Promise.allSettled([
          resolver.resolve4(options.name),
          resolver.resolve6(options.name),
        ]);
        signal.throwIfAborted();
        const ids: string[] = [];
        const errors: string[] = [];
        for (const answer of answers) {
          if (answer.status === 'fulfilled') {
            for (const address of answer.value) ids.push(memberId(address, options.port));
          } else {
            const code = (answer.reason as { code?: string }).code ?? String(answer.reason);
            if (!EMPTY_ANSWER.has(code)) errors.push(code);
          }
        }
        if (errors.length === 2)
          throw new Error(`DNS lookup of ${options.name} failed: ${errors.join(', ')}`);
        return ids;
      } finally {
        signal.removeEventListener('abort', cancel);
      }
    },
  };
}

/** Options of `createMembership` (all durations in ms). */
export interface MembershipOptions {
  /** How often the source is listed. @default 5000 */
  readonly refreshIntervalMs?: number;
  /** Cool-down after the first failed call; doubles with each further failure. @default 1000 */
  readonly cooldownMs?: number;
  /** Longest cool-down. @default 30000 */
  readonly maxCooldownMs?: number;
  /** Consecutive failures after which a member is dropped (until its cool-down ends). @default 3 */
  readonly dropAfterFailures?: number;
  /** Refreshes a member may be missing from the source before it is dropped. @default 2 */
  readonly dropAfterAbsentRefreshes?: number;
  /** Times cool-downs and the refresh interval. @default systemClock */
  readonly clock?: Clock;
  /** Scheme of the members' router URLs: `https` when peers speak mutual TLS. @default 'http' */
  readonly routerScheme?: 'http' | 'https';
}

/** The local view of the cluster's members and their health. */
export interface Membership {
  /** Lists the source now and updates the set; keeps the previous set when the source fails. */
  refresh(signal: AbortSignal): Promise<void>;
  /** Refreshes now and then every `refreshIntervalMs` until `signal` aborts. */
  start(signal: AbortSignal): Promise<void>;
  /** True once the source was listed successfully at least once. */
  loaded(): boolean;
  /** True once loaded and the source listed this node (or listed nobody: a one-node cluster). */
  ready(): boolean;
  /** Known members not dropped, this node included, sorted by id. */
  members(): Member[];
  /**
   * Members to route to now: known, not cooling down; this node always included, sorted by id.
   * Cached until the set or a cool-down changes (every lookup asks): do not modify it.
   */
  available(): readonly Member[];
  /** The member with `id`, if known. */
  get(id: string): Member | undefined;
  /** A call to `id` failed: start or extend its cool-down. */
  reportFailure(id: string): void;
  /** A call to `id` succeeded: clear its failures. */
  reportSuccess(id: string): void;
  /** True while calls to `id` should be avoided. */
  coolingDown(id: string): boolean;
}

interface MemberState {
  readonly member: Member;
  absent: number;
}

/** Creates the membership of node `selfId` over `source`. */
export function createMembership(
  source: MemberSource,
  selfId: string,
  options: MembershipOptions = {},
  logger: RoutingLogger = silentLogger,
): Membership {
  const refreshInterval = options.refreshIntervalMs ?? 5000;
  const cooldown = options.cooldownMs ?? 1000;
  const maxCooldown = options.maxCooldownMs ?? 30_000;
  const dropAfterFailures = options.dropAfterFailures ?? 3;
  const dropAfterAbsent = options.dropAfterAbsentRefreshes ?? 2;
  const clock = options.clock ?? systemClock;
  // The one owner of the members' health: calls that failed, cool-downs, the drop rule's count.
  const health = new PeerHealth({ base: cooldown, max: maxCooldown, clock, capacity: Infinity });
  const scheme = options.routerScheme ?? 'http';
  const self = toMember(selfId, scheme);
  const states = new Map<string, MemberState>();
  let isLoaded = false;
  let listedSelf = false;
  let listedNobody = false;
  // available() is on every lookup's path: sorting 1000 member ids took 0.7–1.1 ms a call. The
  // list is kept until the member set changes, a cool-down starts or is cleared, or the first
  // running cool-down ends.
  let availableCache: readonly Member[] | undefined;
  let availableUntil = 0;

  const dropped = (id: string, at: number): boolean =>
    health.failures(id) >= dropAfterFailures && health.coolingUntil(id) > at;

  const membership: Membership = {
    async refresh(signal) {
      let ids: string[];
      try {
        ids = await source.list(signal);
      } catch (error) {
        if (signal.aborted) return;
        logger.warn(
          { source: source.name, err: error },
          'member refresh failed; keeping the previous member set',
        );
        return;
      }
      const listed = new Set(ids);
      for (const id of listed) {
        const state = states.get(id);
        if (state) state.absent = 0;
        else if (id !== self.id) states.set(id, { member: toMember(id, scheme), absent: 0 });
      }
      for (const [id, state] of states) {
        if (listed.has(id)) continue;
        state.absent += 1;
        if (state.absent >= dropAfterAbsent) {
          states.delete(id);
          health.forget(id);
        }
      }
      availableCache = undefined;
      listedSelf = listed.has(self.id);
      listedNobody = listed.size === 0;
      if (!isLoaded) logger.info({ source: source.name, members: listed.size }, 'member set loaded');
      isLoaded = true;
    },

    async start(signal) {
      await membership.refresh(signal);
      if (signal.aborted) return;
      const timer = clock.setInterval(() => void membership.refresh(signal), refreshInterval).unref();
      signal.addEventListener('abort', () => timer.cancel(), { once: true });
    },

    loaded: () => isLoaded,
    ready: () => isLoaded && (listedSelf || listedNobody),

    members() {
      const at = clock.now();
      const list = [self];
      for (const [id, state] of states) if (!dropped(id, at)) list.push(state.member);
      return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },

    available() {
      const at = clock.now();
      if (availableCache !== undefined && at < availableUntil) return availableCache;
      const list = [self];
      let until = Infinity;
      for (const [id, state] of states) {
        const coolUntil = health.coolingUntil(id);
        if (coolUntil <= at) list.push(state.member);
        else until = Math.min(until, coolUntil);
      }
      availableCache = list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      availableUntil = until;
      return availableCache;
    },

    get(id) {
      return id === self.id ? self : states.get(id)?.member;
    },

    reportFailure(id) {
      if (!states.has(id)) return;
      const failures = health.fail(id);
      availableCache = undefined;
      if (failures === dropAfterFailures)
        logger.warn({ member: id }, 'member dropped after repeated failures');
    },

    reportSuccess(id) {
      if (!states.has(id)) return;
      if (health.succeed(id)) availableCache = undefined;
    },

    coolingDown(id) {
      return states.has(id) && health.coolingDown(id);
    },
  };
  return membership;
}
