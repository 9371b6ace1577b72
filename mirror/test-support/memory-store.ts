import { createHash } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import type {
  BlobInfo,
  ContentStore,
  Descriptor,
  Digest,
  ImageRecord,
  ReadRange,
  StoreEvent,
} from '../src/store/content-store.js';
import { checkRange } from '../src/store/read-range.js';

/** OCI media types the fake uses when it builds images. */
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** Media type of the config blob of images built by `MemoryStore.addOciImage`. */
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
/** Media type of the layers of images built by `MemoryStore.addOciImage`. */
export const OCI_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** What `MemoryStore.addOciImage` stored: the manifest (the image target) and its children. */
export interface MemoryImage {
  readonly name: string;
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  /** The manifest's JSON bytes, as stored. */
  readonly manifestBytes: Buffer;
}

/** Options of `MemoryStore.addOciImage`. */
export interface MemoryImageOptions {
  /** Layer contents (any bytes; the fake does not check they are tars). */
  readonly layers: readonly (Buffer | string)[];
  /** The config JSON object. @default a linux/amd64 config */
  readonly config?: Record<string, unknown>;
  /** Adds `containerd.io/distribution.source.<host>=<repo>` to every blob, like a registry pull. @default true */
  readonly sourceLabel?: boolean;
}

const VALID_DIGEST = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

/** The sha256 digest of `bytes`, as containerd names blobs. */
export function sha256Digest(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

interface Subscriber {
  push(event: StoreEvent): void;
  end(): void;
}

/**
 * The in-memory ContentStore fake: blobs, image records and an event stream, all driven by
 * helpers so tests can make content appear, vanish and change as containerd would.
 * Helpers that change state emit the matching event (as containerd's services do).
 */
export class MemoryStore implements ContentStore {
  readonly #blobs = new Map<Digest, { bytes: Buffer; labels: Record<string, string> }>();
  readonly #images = new Map<string, ImageRecord>();
  readonly #subscribers = new Set<Subscriber>();

  /** Stores `bytes` (labels merged into any existing ones) and returns its info; emits `content-create` when new. */
  addBlob(bytes: Buffer | string, labels: Record<string, string> = {}): BlobInfo {
    const buffer = Buffer.isBuffer(bytes) ? Buffer.from(bytes) : Buffer.from(bytes, 'utf8');
    const digest = sha256Digest(buffer);
    const existing = this.#blobs.get(digest);
    if (existing) {
      Object.assign(existing.labels, labels);
    } else {
      this.#blobs.set(digest, { bytes: buffer, labels: { ...labels } });
      this.emit({ kind: 'content-create', digest, size: buffer.length });
    }
    return this.#infoOf(digest)!;
  }

  /** Removes a blob (images pointing at it stay, as in containerd); emits `content-delete`. */
  removeBlob(digest: Digest): boolean {
    const removed = this.#blobs.delete(digest);
    if (removed) this.emit({ kind: 'content-delete', digest });
    return removed;
  }

  /** Creates or re-points an image record; emits `image-create` or `image-update`. */
  setImage(name: string, target: Descriptor): ImageRecord {
    const kind = this.#images.has(name) ? 'image-update' : 'image-create';
    const record: ImageRecord = { name, target: { ...target } };
    this.#images.set(name, record);
    this.emit({ kind, name, target: record.target });
    return record;
  }

  /** Deletes an image record (its blobs stay until `removeBlob`); emits `image-delete`. */
  deleteImage(name: string): boolean {
    const removed = this.#images.delete(name);
    if (removed) this.emit({ kind: 'image-delete', name });
    return removed;
  }

  /**
   * Builds a single-platform OCI image from `options.layers`, stores its blobs with the labels a
   * containerd pull leaves (gc refs, distribution source) and records it under `name`
   * (`<registry>/<repository>:<tag>`).
   */
  addOciImage(name: string, options: MemoryImageOptions): MemoryImage {
    const { registry, repository } = splitImageName(name);
    const source: Record<string, string> =
      options.sourceLabel === false
        ? {}
        : { [`containerd.io/distribution.source.${registry.replace(/:\d+$/, '')}`]: repository };
    const layers = options.layers.map((layer) => {
      const info = this.addBlob(layer, source);
      return { mediaType: OCI_LAYER_MEDIA_TYPE, digest: info.digest, size: info.size };
    });
    const configJson = options.config ?? {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    };
    const configInfo = this.addBlob(JSON.stringify(configJson), source);
    const config: Descriptor = {
      mediaType: OCI_CONFIG_MEDIA_TYPE,
      digest: configInfo.digest,
      size: configInfo.size,
    };
    const manifestBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config, layers }),
    );
    const gcRefs: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest };
    layers.forEach((layer, i) => (gcRefs[`containerd.io/gc.ref.content.l.${i}`] = layer.digest));
    const manifestInfo = this.addBlob(manifestBytes, { ...gcRefs, ...source });
    const manifest: Descriptor = {
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      digest: manifestInfo.digest,
      size: manifestInfo.size,
    };
    this.setImage(name, manifest);
    return { name, manifest, config, layers, manifestBytes };
  }

  /** Delivers `event` to every current subscriber. */
  emit(event: StoreEvent): void {
    for (const subscriber of this.#subscribers) subscriber.push(event);
  }

  /** Ends every current subscription, as a containerd restart ends the event stream. */
  restart(): void {
    for (const subscriber of [...this.#subscribers]) subscriber.end();
  }

  /** Number of open subscriptions (lets tests wait until a consumer has subscribed). */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  async listImages(signal?: AbortSignal): Promise<ImageRecord[]> {
    signal?.throwIfAborted();
    return [...this.#images.values()].map((image) => ({ name: image.name, target: { ...image.target } }));
  }

  async getImage(name: string, signal?: AbortSignal): Promise<ImageRecord | undefined> {
    signal?.throwIfAborted();
    const image = this.#images.get(name);
    return image && { name: image.name, target: { ...image.target } };
  }

  async info(digest: Digest, signal?: AbortSignal): Promise<BlobInfo | undefined> {
    signal?.throwIfAborted();
    return this.#infoOf(digest);
  }

  async listContent(signal?: AbortSignal): Promise<BlobInfo[]> {
    signal?.throwIfAborted();
    return [...this.#blobs.keys()].map((digest) => this.#infoOf(digest)!);
  }

  async read(digest: Digest, range?: ReadRange, signal?: AbortSignal): Promise<Readable | undefined> {
    signal?.throwIfAborted();
    const blob = VALID_DIGEST.test(digest) ? this.#blobs.get(digest) : undefined;
    if (!blob) return undefined;
    const { start, end } = checkRange(range, blob.bytes.length);
    const stream = Readable.from([blob.bytes.subarray(start, end)], { objectMode: false });
    return signal ? addAbortSignal(signal, stream) : stream;
  }

  subscribe(signal: AbortSignal): AsyncIterable<StoreEvent> {
    // Registered eagerly (not on first next()) so events emitted right after subscribe() are kept.
    const queue: StoreEvent[] = [];
    let ended = signal.aborted;
    let wake: (() => void) | undefined;
    const subscriber: Subscriber = {
      push: (event) => {
        queue.push(event);
        wake?.();
      },
      end: () => {
        ended = true;
        this.#subscribers.delete(subscriber);
        wake?.();
      },
    };
    if (!ended) this.#subscribers.add(subscriber);
    const onAbort = (): void => subscriber.end();
    signal.addEventListener('abort', onAbort, { once: true });
    return (async function* () {
      try {
        for (;;) {
          if (signal.aborted) return;
          const event = queue.shift();
          if (event) {
            yield event;
            continue;
          }
          if (ended) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        subscriber.end();
      }
    })();
  }

  #infoOf(digest: Digest): BlobInfo | undefined {
    const blob = VALID_DIGEST.test(digest) ? this.#blobs.get(digest) : undefined;
    return blob && { digest, size: blob.bytes.length, labels: { ...blob.labels } };
  }
}

function splitImageName(name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  if (slash < 0) throw new TypeError(`image name "${name}" has no registry host`);
  const rest = name.slice(slash + 1).replace(/@.*$/, '');
  const colon = rest.lastIndexOf(':');
  return {
    registry: name.slice(0, slash),
    repository: colon > rest.lastIndexOf('/') ? rest.slice(0, colon) : rest,
  };
}
