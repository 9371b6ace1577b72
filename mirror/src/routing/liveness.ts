// What this node knows of each member's liveness: when it last answered or called us, its boot
// id (a new one means it restarted with an empty index share), the calls in flight to it, and the
// probes that find out whether the owners of this node's keys are still there.
import type { Clock } from '../clock/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import { PeerError } from '../peer-transport/peer-error.js';
import type { RoutingLogger } from './logger.js';
import type { Member, Membership } from './membership.js';
import type { PeerClient } from './peer-client.js';
import type { PeerCaller } from './protocol.js';

/** Key of the cheap lookups that probe members and open connections (no content has it). */
export const PROBE_KEY = `sha256:${'0'.repeat(64)}`;
/** Probes in a row that must time out before an owner counts as down (a refusal counts at once). */
const PROBE_TIMEOUTS_TO_FAIL = 2;

/** Collaborators of {@link createLiveness}. */
export interface LivenessDeps {
  readonly membership: Membership;
  readonly client: PeerClient;
  /** This node, named in every probe. */
  readonly caller: PeerCaller;
  readonly metrics?: Pick<Metrics, 'peerErrors'>;
  readonly logger: RoutingLogger;
  readonly clock: Clock;
  /** The router's lifetime: probes in flight end with it. */
  readonly signal: AbortSignal;
}

/** Options of {@link createLiveness} (ms). */
export interface LivenessOptions {
  /** Owners not heard from for this long are probed. */
  readonly probeIntervalMs: number;
  /** Most probes per call of `probe`. */
  readonly maxProbesPerTick: number;
}

/** The liveness view of one router. */
export interface Liveness {
  /**
   * A member answered (or called us): it is alive. When its boot id changed, it restarted with an
   * empty index share: it is routable at once and {@link Liveness.takeRestarted} names it.
   */
  heardFrom(id: string, boot: string | undefined): void;
  /** A call to `member` failed: counted by reason and cooled down (a caller's abort is neither). */
  failure(operation: string, member: Member, error: unknown): void;
  /** True when `id` restarted less than `ms` ago. */
  restartedWithin(id: string, ms: number): boolean;
  /** The members that restarted since the last call (their keys are to be re-sent). */
  takeRestarted(): ReadonlySet<string>;
  /** Marks a call in flight to `id` (its answer tells more than a probe); returns the release. */
  busy(id: string): () => void;
  /**
   * Probes the owners in `ownerIds` not heard from within the probe interval, longest silent
   * first, at most `maxProbesPerTick`. A failed probe cools the owner down, so the next tick
   * re-ranks its keys to the next members.
   */
  probe(ownerIds: Iterable<string>): void;
}

/** Creates the liveness view of node `selfId`. */
export function createLiveness(selfId: string, deps: LivenessDeps, options: LivenessOptions): Liveness {
  const { membership, client, caller, metrics, logger, clock } = deps;
  const heard = new Map<string, number>();
  const boots = new Map<string, string>();
  const restartedAt = new Map<string, number>();
  let restarted = new Set<string>();
  const probing = new Set<string>();
  const inFlight = new Map<string, number>();
  const probeTimeouts = new Map<string, number>();

  const liveness: Liveness = {
    heardFrom(id, boot) {
      const at = clock.now();
      heard.set(id, at);
      probeTimeouts.delete(id);
      if (boot === undefined) return;
      const known = boots.get(id);
      boots.set(id, boot);
      if (known === undefined || known === boot) return;
      restartedAt.set(id, at);
      restarted.add(id);
      membership.reportSuccess(id);
      logger.info({ member: id }, 'member restarted; re-sending the keys it owns');
    },

    failure(operation, member, error) {
      const reason = error instanceof PeerError ? error.reason : 'network';
      if (reason === 'aborted') return;
      metrics?.peerErrors.inc({ operation, reason });
      membership.reportFailure(member.id);
      logger.debug({ member: member.id, operation, reason, err: error }, 'peer call failed');
    },

    restartedWithin(id, ms) {
      return clock.now() - (restartedAt.get(id) ?? 0) < ms;
    },

    takeRestarted() {
      const taken = restarted;
      restarted = new Set();
      return taken;
    },

    busy(id) {
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
      return () => {
        const left = inFlight.get(id)! - 1;
        if (left === 0) inFlight.delete(id);
        else inFlight.set(id, left);
      };
    },

    probe(ownerIds) {
      const at = clock.now();
      const due: Member[] = [];
      for (const id of new Set(ownerIds)) {
        if (
          id === selfId ||
          probing.has(id) ||
          inFlight.has(id) ||
          at - (heard.get(id) ?? 0) < options.probeIntervalMs
        )
          continue;
        if (membership.coolingDown(id)) continue;
        const member = membership.get(id);
        if (member) due.push(member);
      }
      due.sort((a, b) => (heard.get(a.id) ?? 0) - (heard.get(b.id) ?? 0));
      for (const member of due.slice(0, options.maxProbesPerTick)) {
        probing.add(member.id);
        client
          .lookup(member.routerUrl, PROBE_KEY, deps.signal, caller)
          .then(
            (answer) => {
              membership.reportSuccess(member.id);
              liveness.heardFrom(member.id, answer.boot);
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
              liveness.failure('probe', member, error);
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
    },
  };
  return liveness;
}
