/** A tag the local containerd asks the mirror to resolve. */
export interface TagRequest {
  /** The registry host from `ns`, e.g. `docker.io` or `127.0.0.1:5000`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
}

/**
 * Decides whether the mirror may answer a tag (from the local store or from peers) or must answer
 * 404 so containerd resolves it upstream and stays fresh. Digests are never subject to it.
 */
export interface TagPolicy {
  allowTagResolution(request: TagRequest, signal: AbortSignal): Promise<boolean>;
}
