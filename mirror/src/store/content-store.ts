import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';

// Re-exported: the store's interface speaks in digests, and its callers import them from here.
export type { Digest };

/** What the store knows about one blob (layer, config, manifest or index). */
export interface BlobInfo {
  readonly digest: Digest;
  readonly size: number;
  /** containerd content labels, e.g. `containerd.io/distribution.source.docker.io=library/nginx`. */
  readonly labels: Readonly<Record<string, string>>;
}

/** The descriptor an image record points at (usually a manifest or an index). */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
}

/** One containerd image record: `docker.io/library/nginx:1.27`, `repo@sha256:…` or CRI's bare `sha256:…`. */
export interface ImageRecord {
  readonly name: string;
  readonly target: Descriptor;
}

/** A change in the store, as containerd's event stream reports it. */
export type StoreEvent =
  | { readonly kind: 'image-create' | 'image-update'; readonly name: string; readonly target?: Descriptor }
  | { readonly kind: 'image-delete'; readonly name: string }
  | { readonly kind: 'content-create'; readonly digest: Digest; readonly size?: number }
  | { readonly kind: 'content-delete'; readonly digest: Digest };

/** Which bytes of a blob to read: `offset` from the start, `length` bytes (to the end when omitted). */
export interface ReadRange {
  readonly offset: number;
  readonly length?: number;
}

/**
 * Read access to a node's content: what containerd holds, served by the mirror.
 * Implemented by `ContainerdStore` (mirror/src/containerd) and by `MemoryStore` (the fake).
 * Every method takes an AbortSignal; a missing blob or image is `undefined`, never an exception.
 */
export interface ContentStore {
  /** Every image record in the namespace. */
  listImages(signal?: AbortSignal): Promise<ImageRecord[]>;
  /** One image record by its full name, or undefined. */
  getImage(name: string, signal?: AbortSignal): Promise<ImageRecord | undefined>;
  /** Size and labels of a blob, or undefined when the store does not hold it. */
  info(digest: Digest, signal?: AbortSignal): Promise<BlobInfo | undefined>;
  /** Every blob in the store, with labels. */
  listContent(signal?: AbortSignal): Promise<BlobInfo[]>;
  /**
   * A stream of the blob's bytes in `range` (the whole blob by default), or undefined when it is
   * not held. The stream errors if the blob disappears part-way; destroying it releases resources.
   */
  read(digest: Digest, range?: ReadRange, signal?: AbortSignal): Promise<Readable | undefined>;
  /**
   * Changes as they happen. The iterable ends when the underlying stream ends (containerd
   * restarted); the caller re-subscribes and resyncs. Aborting `signal` ends it too.
   */
  subscribe(signal: AbortSignal): AsyncIterable<StoreEvent>;
}
