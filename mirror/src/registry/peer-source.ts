import type { Readable } from 'node:stream';
import type { Digest } from '../store/content-store.js';

/** A manifest (or index) a peer served, already verified against its digest. */
export interface PeerManifest {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly body: Buffer;
  /** The member that served it. */
  readonly peerId: string;
}

/** A blob stream a peer is serving; `stream` yields exactly the bytes of `range`. */
export interface PeerBlob {
  /** Size of the whole blob. */
  readonly size: number;
  /** Inclusive byte range being streamed (the whole blob when no range was asked). */
  readonly range: { readonly start: number; readonly end: number };
  /** Bytes of the range. Resumes from other peers internally when one breaks part-way. */
  readonly stream: Readable;
  readonly peerId: string;
}

/** What the mirror asks peers for. `registry` is the `ns` host, `repository` the name in the URL. */
export interface PeerRequest {
  readonly registry: string;
  readonly repository: string;
}

/**
 * Content from other nodes: the mirror path's view of the peer-to-peer network.
 * Returns undefined (fast, within its lookup budget) when no peer can serve, so the caller answers 404.
 */
export interface PeerSource {
  /** A manifest by tag or digest. */
  manifest(
    request: PeerRequest & { readonly reference: string },
    signal: AbortSignal,
  ): Promise<PeerManifest | undefined>;
  /** Size of a blob, without fetching it (for HEAD). */
  blobSize(
    request: PeerRequest & { readonly digest: Digest },
    signal: AbortSignal,
  ): Promise<number | undefined>;
  /** A blob's bytes, optionally one inclusive range (`end` omitted = to the end). */
  blob(
    request: PeerRequest & { readonly digest: Digest; readonly range?: { start: number; end?: number } },
    signal: AbortSignal,
  ): Promise<PeerBlob | undefined>;
}
