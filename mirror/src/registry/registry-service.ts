import type { Readable } from 'node:stream';
import type { Metrics } from '../metrics/metrics.js';
import { parseDigest, verifyDigest } from '../oci/digest.js';
import { OciError, rangeNotSatisfiable } from '../oci/errors.js';
import { MediaTypes, detectManifestMediaType } from '../oci/media-types.js';
import { parseRange } from '../oci/range.js';
import {
  imageName,
  normalizeRegistry,
  parseRegistryHost,
  parseRepository,
  parseTag,
} from '../oci/reference.js';
import type { ContentStore, Digest } from '../store/content-store.js';
import type { PeerSource } from './peer-source.js';
import type { TagPolicy } from './tag-policy.js';

/** Collaborators of {@link createRegistryService}. */
export interface RegistryServiceDeps {
  /** This node's content (containerd, or `MemoryStore` in tests). */
  readonly store: ContentStore;
  /** Content of other nodes; without it the mirror serves local content only. */
  readonly peers?: PeerSource;
  /** Whether tags may be answered by the mirror; without it every tag may be. */
  readonly tagPolicy?: TagPolicy;
  /** Counts `mirror_requests_total` for requests from the local containerd. */
  readonly metrics?: Metrics;
}

/** Tunables of {@link createRegistryService}; defaults in {@link REGISTRY_SERVICE_DEFAULTS}. */
export interface RegistryServiceOptions {
  /** Registry hosts (`ns`) this mirror serves; Docker Hub aliases are equivalent. Empty = all. */
  readonly mirroredRegistries?: readonly string[];
  /** Largest manifest read from the store, in bytes; bigger content is not served as a manifest. */
  readonly maxManifestBytes?: number;
}

/** Defaults of {@link RegistryServiceOptions}, in one place. */
export const REGISTRY_SERVICE_DEFAULTS: Readonly<Required<RegistryServiceOptions>> = Object.freeze({
  mirroredRegistries: [],
  maxManifestBytes: 4 * 1024 * 1024,
});

/** The HTTP methods the registry API serves. */
export type ReadMethod = 'GET' | 'HEAD';

/** A manifest request as the edge parsed it (strings unchecked: the service validates them). */
export interface ManifestRequest {
  /** The `ns` query parameter; undefined when the client sent none. */
  readonly registry?: string;
  readonly repository: string;
  /** A tag or a digest. */
  readonly reference: string;
  readonly method: ReadMethod;
  /** The request carries the loop-guard header: serve local content only. */
  readonly fromPeer: boolean;
}

/** A blob request as the edge parsed it (strings unchecked: the service validates them). */
export interface BlobRequest {
  readonly registry?: string;
  readonly repository: string;
  readonly digest: string;
  /** The raw `Range` header, if any. */
  readonly range?: string;
  readonly method: ReadMethod;
  readonly fromPeer: boolean;
}

/** Response headers the edge sends for a successful answer. */
export interface ServeHeaders {
  readonly contentType: string;
  readonly contentLength: number;
  /** `Docker-Content-Digest`. */
  readonly digest: Digest;
  /** `Content-Range: bytes s-e/size`, on 206 only. */
  readonly contentRange?: string;
  /** `Accept-Ranges: bytes`, on blobs. */
  readonly acceptRanges?: 'bytes';
}

/** A successful answer: the edge streams `body` (absent for HEAD) with `headers`. */
export interface ServeResult {
  readonly status: 200 | 206;
  readonly headers: ServeHeaders;
  /** A manifest's bytes, or a blob stream the edge must destroy if the client goes away. */
  readonly body?: Buffer | Readable;
  /** Where the bytes come from, for `served_bytes_total{source}`. */
  readonly source: 'local' | 'peer';
}

/**
 * The mirror's policy: answer from the local store first, else from peers, else 404 so containerd
 * falls back upstream. A request from a peer (`fromPeer`) is served from the local store only.
 * Failures are thrown as {@link OciError}.
 */
export interface RegistryService {
  /** A manifest or index by tag or digest. */
  manifest(request: ManifestRequest, signal: AbortSignal): Promise<ServeResult>;
  /** A blob by digest, optionally one byte range. */
  blob(request: BlobRequest, signal: AbortSignal): Promise<ServeResult>;
}

/** Label value of `mirror_requests_total{registry}` when the client sent no `ns`. */
export const UNKNOWN_REGISTRY_LABEL = 'unknown';

type Kind = 'manifest' | 'blob';

interface ManifestBytes {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly body: Buffer;
}

/** Reads at most `limit` bytes of a stream; undefined when it holds more (the stream is destroyed). */
async function readBounded(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      total += buffer.length;
      if (total > limit) return undefined;
      chunks.push(buffer);
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, total);
}

function isAbort(error: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (error instanceof Error && error.name === 'AbortError');
}

/**
 * Creates the registry service. Without `ns` a digest is served as usual (peers are asked with
 * `registry: ''`), and a tag resolves only when exactly one local image record
 * `<host>/<repository>:<tag>` exists, whatever its host; peers are never asked for such a tag.
 */
export function createRegistryService(
  deps: RegistryServiceDeps,
  options: RegistryServiceOptions = {},
): RegistryService {
  const opts = { ...REGISTRY_SERVICE_DEFAULTS, ...options };
  const { store, peers, tagPolicy, metrics } = deps;
  const mirrored = new Set(opts.mirroredRegistries.map((host) => normalizeRegistry(host).toLowerCase()));

  /** Validates `ns` and the repository; NAME_UNKNOWN when the registry is not mirrored. */
  function checkScope(registry: string | undefined, repository: string): void {
    if (registry !== undefined) {
      parseRegistryHost(registry);
      if (mirrored.size > 0 && !mirrored.has(normalizeRegistry(registry).toLowerCase())) {
        throw new OciError('NAME_UNKNOWN', { message: `registry ${registry} is not mirrored here` });
      }
    }
    parseRepository(repository);
  }

  function count(
    registry: string | undefined,
    kind: Kind,
    fromPeer: boolean,
    source: 'local' | 'peer' | 'none',
  ): void {
    if (fromPeer || metrics === undefined) return;
    metrics.mirrorRequests.inc({
      registry: registry === undefined ? UNKNOWN_REGISTRY_LABEL : normalizeRegistry(registry),
      kind,
      outcome: source === 'none' ? 'miss' : 'hit',
      source,
    });
  }

  /** Store calls failing (containerd down) become 503 so containerd falls back at once. */
  async function fromStore<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      throw new OciError('UNAVAILABLE', { message: 'the local content store is unavailable', cause: error });
    }
  }

  /** Peer failures other than our own abort are misses: the caller answers 404 and containerd falls back. */
  async function fromPeers<T>(
    signal: AbortSignal,
    call: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      return undefined;
    }
  }

  /** A manifest from the local store, verified against its digest; undefined when absent or unusable. */
  async function localManifest(digest: Digest, signal: AbortSignal): Promise<ManifestBytes | undefined> {
    const info = await fromStore(signal, () => store.info(digest, signal));
    if (info === undefined || info.size > opts.maxManifestBytes) return undefined;
    const stream = await fromStore(signal, () => store.read(digest, undefined, signal));
    if (stream === undefined) return undefined;
    const body = await fromStore(signal, () => readBounded(stream, opts.maxManifestBytes));
    // A corrupt local copy is a miss: a peer may hold an intact one.
    if (body === undefined || !verifyDigest(digest, body)) return undefined;
    const mediaType = detectManifestMediaType(body);
    return mediaType === undefined ? undefined : { mediaType, digest, body };
  }

  /** The one local image record `<host>/<repository>:<tag>` when exactly one host has it. */
  async function soleImageDigest(
    repository: string,
    tag: string,
    signal: AbortSignal,
  ): Promise<{ registry: string; digest: Digest } | undefined> {
    const images = await fromStore(signal, () => store.listImages(signal));
    const matches = images.filter((image) => {
      const slash = image.name.indexOf('/');
      if (slash <= 0) return false;
      const host = image.name.slice(0, slash);
      try {
        parseRegistryHost(host);
      } catch {
        return false;
      }
      return imageName(host, repository, tag) === image.name;
    });
    const [only] = matches;
    return matches.length === 1 && only !== undefined
      ? { registry: only.name.slice(0, only.name.indexOf('/')), digest: only.target.digest }
      : undefined;
  }

  function manifestResult(
    manifest: ManifestBytes,
    method: ReadMethod,
    source: 'local' | 'peer',
  ): ServeResult {
    return {
      status: 200,
      headers: {
        contentType: manifest.mediaType,
        contentLength: manifest.body.length,
        digest: manifest.digest,
      },
      ...(method === 'GET' ? { body: manifest.body } : {}),
      source,
    };
  }

  async function peerManifest(
    request: ManifestRequest,
    reference: string,
    signal: AbortSignal,
  ): Promise<ServeResult | undefined> {
    if (request.fromPeer || peers === undefined) return undefined;
    const found = await fromPeers(signal, () =>
      peers.manifest({ registry: request.registry ?? '', repository: request.repository, reference }, signal),
    );
    return (
      found &&
      manifestResult(
        { mediaType: found.mediaType, digest: found.digest, body: found.body },
        request.method,
        'peer',
      )
    );
  }

  async function manifestByTag(
    request: ManifestRequest,
    tag: string,
    signal: AbortSignal,
  ): Promise<ServeResult | undefined> {
    const { repository } = request;
    let registry = request.registry;
    let target: Digest | undefined;
    if (registry === undefined) {
      const sole = await soleImageDigest(repository, tag, signal);
      if (sole === undefined) return undefined;
      ({ registry, digest: target } = sole);
    }
    if (!request.fromPeer && tagPolicy !== undefined) {
      const allowed = await tagPolicy.allowTagResolution({ registry, repository, tag }, signal);
      if (!allowed) {
        throw new OciError('MANIFEST_UNKNOWN', {
          message: `tag ${tag} of ${repository} is resolved upstream, not by this mirror`,
        });
      }
    }
    if (target === undefined) {
      const record = await fromStore(signal, () =>
        store.getImage(imageName(registry, repository, tag), signal),
      );
      target = record?.target.digest;
    }
    const local = target === undefined ? undefined : await localManifest(target, signal);
    if (local !== undefined) return manifestResult(local, request.method, 'local');
    // Without `ns` the tag cannot be keyed for peers (their keys carry the registry).
    return request.registry === undefined ? undefined : peerManifest(request, tag, signal);
  }

  async function blobFromPeers(
    request: BlobRequest,
    digest: Digest,
    signal: AbortSignal,
  ): Promise<ServeResult | undefined> {
    if (request.fromPeer || peers === undefined) return undefined;
    const scope = { registry: request.registry ?? '', repository: request.repository, digest };
    if (request.method === 'HEAD' || request.range !== undefined) {
      const size = await fromPeers(signal, () => peers.blobSize(scope, signal));
      if (size === undefined) return undefined;
      if (request.method === 'HEAD') {
        return { status: 200, headers: blobHeaders(digest, size), source: 'peer' };
      }
      const decision = parseRange(request.range, size);
      if (decision.kind === 'unsatisfiable') throw rangeNotSatisfiable(size, request.range ?? '');
      if (decision.kind === 'partial') {
        const blob = await fromPeers(signal, () =>
          peers.blob({ ...scope, range: { start: decision.start, end: decision.end } }, signal),
        );
        if (blob === undefined) return undefined;
        return {
          status: 206,
          headers: blobHeaders(digest, blob.range.end - blob.range.start + 1, {
            ...blob.range,
            size: blob.size,
          }),
          body: blob.stream,
          source: 'peer',
        };
      }
    }
    const blob = await fromPeers(signal, () => peers.blob(scope, signal));
    return (
      blob && { status: 200, headers: blobHeaders(digest, blob.size), body: blob.stream, source: 'peer' }
    );
  }

  return {
    async manifest(request, signal) {
      checkScope(request.registry, request.repository);
      const isDigestRef = request.reference.includes(':');
      const reference = isDigestRef ? parseDigest(request.reference) : parseTag(request.reference);
      let result: ServeResult | undefined;
      try {
        if (isDigestRef) {
          const local = await localManifest(reference as Digest, signal);
          result = local
            ? manifestResult(local, request.method, 'local')
            : await peerManifest(request, reference, signal);
        } else {
          result = await manifestByTag(request, reference, signal);
        }
      } catch (error) {
        if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN')
          count(request.registry, 'manifest', request.fromPeer, 'none');
        throw error;
      }
      count(request.registry, 'manifest', request.fromPeer, result?.source ?? 'none');
      if (result === undefined) {
        throw new OciError('MANIFEST_UNKNOWN', {
          message: `manifest ${reference} of ${request.repository} is not held by this mirror`,
        });
      }
      return result;
    },

    async blob(request, signal) {
      checkScope(request.registry, request.repository);
      const digest = parseDigest(request.digest);
      const info = await fromStore(signal, () => store.info(digest, signal));
      let result: ServeResult | undefined;
      if (info !== undefined) {
        // Range applies to GET only (RFC 9110 §14.2); HEAD describes the whole blob.
        const decision =
          request.method === 'GET' ? parseRange(request.range, info.size) : { kind: 'full' as const };
        if (decision.kind === 'unsatisfiable') throw rangeNotSatisfiable(info.size, request.range ?? '');
        const span =
          decision.kind === 'partial'
            ? { start: decision.start, end: decision.end, size: info.size }
            : undefined;
        const length = span ? span.end - span.start + 1 : info.size;
        if (request.method === 'HEAD') {
          result = { status: 200, headers: blobHeaders(digest, info.size), source: 'local' };
        } else {
          const stream = await fromStore(signal, () =>
            store.read(digest, span ? { offset: span.start, length } : undefined, signal),
          );
          // Gone between info and read (garbage collected): fall through as a miss.
          if (stream !== undefined) {
            result = {
              status: span ? 206 : 200,
              headers: blobHeaders(digest, length, span),
              body: stream,
              source: 'local',
            };
          }
        }
      }
      result ??= await blobFromPeers(request, digest, signal);
      count(request.registry, 'blob', request.fromPeer, result?.source ?? 'none');
      if (result === undefined) {
        throw new OciError('BLOB_UNKNOWN', { message: `blob ${digest} is not held by this mirror` });
      }
      return result;
    },
  };
}

function blobHeaders(
  digest: Digest,
  contentLength: number,
  span?: { start: number; end: number; size: number },
): ServeHeaders {
  return {
    contentType: MediaTypes.octetStream,
    contentLength,
    digest,
    acceptRanges: 'bytes',
    ...(span ? { contentRange: `bytes ${span.start}-${span.end}/${span.size}` } : {}),
  };
}
