// What a node does with peer-protocol requests, once validated: the index share it owns.
// Framework-free so the fastify server and in-process test transports run the same code.
import type { IndexStore } from './index-store.js';
import type {
  AdvertiseRequest,
  AdvertiseResponse,
  LookupHolder,
  LookupRequest,
  LookupResponse,
  PeerCaller,
  WithdrawRequest,
  WithdrawResponse,
} from './protocol.js';

/**
 * Handles validated peer-protocol requests against this node's index share. `caller` is the
 * sender when the request names itself; every answer carries this share's boot id.
 */
export interface PeerService {
  advertise(request: AdvertiseRequest, caller?: PeerCaller): AdvertiseResponse;
  withdraw(request: WithdrawRequest, caller?: PeerCaller): WithdrawResponse;
  lookup(request: LookupRequest, caller?: PeerCaller): LookupResponse;
}

/** Told of every request that names its sender (the router uses it to spot restarted members). */
export type CallerObserver = (caller: PeerCaller) => void;

/**
 * Creates the peer service over `index`; `now` is the clock in ms (for the remaining TTL) and
 * `onCaller` sees the sender of every request that names one.
 */
export function createPeerService(
  index: IndexStore,
  now: () => number = Date.now,
  onCaller?: CallerObserver,
): PeerService {
  const boot = index.bootId;
  const seen = (caller: PeerCaller | undefined): void => {
    if (caller && onCaller) onCaller(caller);
  };
  return {
    advertise(request, caller) {
      seen(caller);
      index.add(request.holder, request.keys, request.ttlSeconds);
      return { accepted: request.keys.length, boot };
    },
    withdraw(request, caller) {
      seen(caller);
      return { removed: index.remove(request.holder.id, request.keys), boot };
    },
    lookup(request, caller) {
      seen(caller);
      const at = now();
      const holders: Record<string, LookupHolder[]> = {};
      for (const key of request.keys) {
        holders[key] = index.get(key).map((h) => ({
          id: h.id,
          registryUrl: h.registryUrl,
          ttlSeconds: Math.max(0, Math.floor((h.expiresAt - at) / 1000)),
        }));
      }
      return { holders, boot };
    },
  };
}
