/** A peer that holds some content: the base URL of its registry endpoint, e.g. `http://10.0.0.7:5000`. */
export interface PeerLocation {
  /** Stable identity of the member (its router address), used for cool-downs and metrics. */
  readonly id: string;
  /** Base URL of the peer's registry API (no trailing slash). */
  readonly registryUrl: string;
}

/** Options of one lookup. */
export interface LookupOptions {
  /** Ends the lookup; iteration then stops without error. */
  readonly signal: AbortSignal;
  /** How many distinct holders to yield at most. @default 3 */
  readonly count?: number;
}

/**
 * Finds which peers hold a key and tells the cluster which keys this node holds.
 * Keys are bare digests (`sha256:…`) and tag references (`docker.io/library/nginx:1.27`).
 * Implemented by the P2P router (mirror/src/routing) and by `MemoryRouter` (the fake).
 */
export interface Router {
  /** True once this node has joined the member set and can look up and advertise. */
  ready(): boolean;
  /** Holders of `key` other than this node, as they are found, first answer first. */
  lookup(key: string, options: LookupOptions): AsyncIterable<PeerLocation>;
  /** Announce that this node holds `keys` (idempotent; refreshed by the router on its schedule). */
  advertise(keys: readonly string[], signal?: AbortSignal): Promise<void>;
  /** Announce that this node no longer holds `keys`. */
  withdraw(keys: readonly string[], signal?: AbortSignal): Promise<void>;
}
