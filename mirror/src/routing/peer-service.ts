// What a node does with peer-protocol requests, once validated: the index share it owns.
// Framework-free so the fastify server and in-process test transports run the same code.
import type { IndexStore } from './index-store.js';
import type {
  AdvertiseRequest,
  AdvertiseResponse,
  LookupHolder,
  LookupRequest,
  LookupResponse,
  WithdrawRequest,
  WithdrawResponse,
} from './protocol.js';

/** Handles validated peer-protocol requests against this node's index share. */
export interface PeerService {
  advertise(request: AdvertiseRequest): AdvertiseResponse;
  withdraw(request: WithdrawRequest): WithdrawResponse;
  lookup(request: LookupRequest): LookupResponse;
}

/** Creates the peer service over `index`; `now` is the clock in ms (for the remaining TTL). */
export function createPeerService(index: IndexStore, now: () => number = Date.now): PeerService {
  return {
    advertise(request) {
      index.add(request.holder, request.keys, request.ttlSeconds);
      return { accepted: request.keys.length };
    },
    withdraw(request) {
      return { removed: index.remove(request.holder.id, request.keys) };
    },
    lookup(request) {
      const at = now();
      const holders: Record<string, LookupHolder[]> = {};
      for (const key of request.keys) {
        holders[key] = index.get(key).map((h) => ({
          id: h.id,
          registryUrl: h.registryUrl,
          ttlSeconds: Math.max(0, Math.floor((h.expiresAt - at) / 1000)),
        }));
      }
      return { holders };
    },
  };
}
