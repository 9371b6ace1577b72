/**
 * The ContentStore backed by a live containerd, over its gRPC socket (grpc-js + this folder's own
 * minimal `.proto` files) and, for blob bytes, its content directory on disk when mounted.
 *
 * containerd compatibility:
 * - 1.6 and 1.7 serve every RPC used here under the same names and field numbers.
 * - 1.7+ declares the events `Envelope` in `containerd.types`; the wire format and RPC path are unchanged.
 * - 2.x keeps the `containerd.services.{images,content,events,version}.v1` services; only
 *   2.1+ publishes `/content/create` (so `content-create` events never arrive from 1.x or 2.0),
 *   while `/images/*` and `/content/delete` are published by all of them.
 * - Event `type_url`s are bare message names (`containerd.services.images.v1.ImageCreate`).
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough, Transform, addAbortSignal, pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isDigest } from '../oci/digest.js';
import type {
  BlobInfo,
  ContentStore,
  Descriptor,
  Digest,
  ImageRecord,
  ReadRange,
  StoreEvent,
} from '../store/content-store.js';
import { checkRange } from '../store/read-range.js';
import { blobPath } from './blob-path.js';
import { decodeEvent, subscribeFilters } from './events.js';
import { toLabels } from './labels.js';
import { FileBody } from '../store/file-body.js';

/** Options of `createContainerdStore`. */
export interface ContainerdStoreOptions {
  /** containerd's gRPC socket path (`/run/containerd/containerd.sock`) or a `unix:` address. */
  readonly socket: string;
  /** containerd namespace whose content is served. @default 'k8s.io' */
  readonly namespace?: string;
  /** Content directory read directly when present (`…/io.containerd.content.v1.content`); gRPC `Content.Read` otherwise. */
  readonly contentPath?: string;
  /** Deadline of each unary call (Info, Get, List, Version). @default 5000 */
  readonly callTimeoutMs?: number;
  /** Deadline of `Content.List`, which streams the whole store. @default 30000 */
  readonly listTimeoutMs?: number;
  /** Directory holding this folder's `.proto` files. @default found next to this module (see `findProtoDir`) */
  readonly protoDir?: string;
  /** Told why an event subscription ended (containerd restarted, stream broke); never told of an abort. */
  readonly onSubscriptionEnd?: (error: Error | undefined) => void;
  /** Told which path served each read (for metrics/tests). */
  readonly onRead?: (via: 'disk' | 'grpc', digest: Digest) => void;
}

/** The Version service's answer. */
export interface ContainerdVersionInfo {
  readonly version: string;
  readonly revision: string;
}

// ---- wire shapes as proto-loader decodes them (keepCase, longs as Number, defaults filled) ----
interface WireDescriptor {
  media_type: string;
  digest: string;
  size: number;
}
interface WireImage {
  name: string;
  labels: Record<string, string>;
  target: WireDescriptor | null;
}
interface WireInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
}
interface WireEnvelope {
  namespace: string;
  topic: string;
  event: { type_url: string; value: Buffer } | null;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;
type StreamMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<Res>;

interface ImagesClient extends grpc.Client {
  Get: UnaryMethod<{ name: string }, { image: WireImage | null }>;
  List: UnaryMethod<{ filters: string[] }, { images: WireImage[] }>;
}
interface ContentClient extends grpc.Client {
  Info: UnaryMethod<{ digest: string }, { info: WireInfo | null }>;
  List: StreamMethod<{ filters: string[] }, { info: WireInfo[] }>;
  Read: StreamMethod<{ digest: string; offset: number; size: number }, { offset: number; data: Buffer }>;
}
interface EventsClient extends grpc.Client {
  Subscribe: StreamMethod<{ filters: string[] }, WireEnvelope>;
}
interface VersionClient extends grpc.Client {
  Version: UnaryMethod<Record<string, never>, ContainerdVersionInfo>;
}
type ClientConstructor<T> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => T;

const PROTO_FILES = ['images.proto', 'content.proto', 'events.proto', 'version.proto'];

/**
 * Where the `.proto` files are: `./proto` beside this module (tsx runs the sources in place), else
 * the source folder seen from the compiled module (`dist/mirror/src/containerd/` →
 * `mirror/src/containerd/proto`), since `tsc` does not copy non-TS files.
 */
export function findProtoDir(moduleUrl: string = import.meta.url): string {
  const here = dirname(fileURLToPath(moduleUrl));
  const candidates = [
    join(here, 'proto'),
    join(here, '..', '..', '..', '..', 'mirror', 'src', 'containerd', 'proto'),
  ];
  const found = candidates.find((dir) => existsSync(join(dir, 'images.proto')));
  if (!found) throw new Error(`containerd .proto files not found in ${candidates.join(' or ')}`);
  return found;
}

const loaded = new Map<string, grpc.GrpcObject>();
function loadProtos(protoDir: string): grpc.GrpcObject {
  let root = loaded.get(protoDir);
  if (!root) {
    const definition = protoLoader.loadSync(PROTO_FILES, {
      includeDirs: [protoDir],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
    });
    root = grpc.loadPackageDefinition(definition);
    loaded.set(protoDir, root);
  }
  return root;
}

function service<T>(root: grpc.GrpcObject, path: string): ClientConstructor<T> {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function') throw new Error(`service ${path} missing from the .proto files`);
  // proto-loader builds the constructor at run time; its methods match the interface declared above.
  return node as unknown as ClientConstructor<T>;
}

/** Creates a ContentStore reading from the containerd at `options.socket`. */
export function createContainerdStore(options: ContainerdStoreOptions): ContainerdStore {
  return new ContainerdStore(options);
}

/** ContentStore over containerd's gRPC API and content directory; see the module comment for versions. */
export class ContainerdStore implements ContentStore {
  readonly #namespace: string;
  readonly #contentPath: string | undefined;
  readonly #callTimeoutMs: number;
  readonly #listTimeoutMs: number;
  readonly #options: ContainerdStoreOptions;
  readonly #metadata: grpc.Metadata;
  readonly #images: ImagesClient;
  readonly #content: ContentClient;
  readonly #events: EventsClient;
  readonly #version: VersionClient;
  readonly #filters: string[];

  constructor(options: ContainerdStoreOptions) {
    this.#options = options;
    this.#namespace = options.namespace ?? 'k8s.io';
    this.#filters = subscribeFilters(this.#namespace);
    this.#contentPath = options.contentPath;
    this.#callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.#listTimeoutMs = options.listTimeoutMs ?? 30_000;
    this.#metadata = new grpc.Metadata();
    this.#metadata.set('containerd-namespace', this.#namespace);
    const root = loadProtos(options.protoDir ?? findProtoDir());
    const address = options.socket.startsWith('unix:') ? options.socket : `unix://${options.socket}`;
    const credentials = grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      // containerd checks nothing of it, but a unix target has no meaningful default authority.
      'grpc.default_authority': 'localhost',
      // containerd sends up to 16 MiB per message (a big Images.List); grpc-js accepts 4 MiB by default.
      'grpc.max_receive_message_length': 32 * 1024 * 1024,
      // After a containerd restart, reconnect within a fraction of a second rather than grpc's 1 s+.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2000,
      // One of containerd's 1 MiB Read chunks in flight instead of HTTP/2's default 64 KiB;
      // bounded so a few concurrent blob streams stay small next to a 128 MiB memory limit.
      'grpc-node.flow_control_window': 1024 * 1024,
    };
    const Images = service<ImagesClient>(root, 'containerd.services.images.v1.Images');
    this.#images = new Images(address, credentials, channelOptions);
    // One HTTP/2 connection for all four services.
    const channelOverride = this.#images.getChannel();
    const Content = service<ContentClient>(root, 'containerd.services.content.v1.Content');
    this.#content = new Content(address, credentials, { channelOverride });
    const Events = service<EventsClient>(root, 'containerd.services.events.v1.Events');
    this.#events = new Events(address, credentials, { channelOverride });
    const Version = service<VersionClient>(root, 'containerd.services.version.v1.Version');
    this.#version = new Version(address, credentials, { channelOverride });
  }

  /** containerd's version (used by `configure` to decide whether hosts.toml may carry `dial_timeout`). */
  async containerdVersion(signal?: AbortSignal): Promise<ContainerdVersionInfo> {
    const response = await this.#unary('Version.Version', this.#version, this.#version.Version, {}, signal);
    return { version: response.version, revision: response.revision };
  }

  async listImages(signal?: AbortSignal): Promise<ImageRecord[]> {
    const response = await this.#unary(
      'Images.List',
      this.#images,
      this.#images.List,
      { filters: [] },
      signal,
    );
    return response.images.flatMap((image) => toImageRecord(image) ?? []);
  }

  async getImage(name: string, signal?: AbortSignal): Promise<ImageRecord | undefined> {
    if (name === '') return undefined;
    const response = await notFoundAsUndefined(
      this.#unary('Images.Get', this.#images, this.#images.Get, { name }, signal),
    );
    return response?.image ? toImageRecord(response.image) : undefined;
  }

  async info(digest: Digest, signal?: AbortSignal): Promise<BlobInfo | undefined> {
    signal?.throwIfAborted();
    if (!isDigest(digest)) return undefined;
    const response = await notFoundAsUndefined(
      this.#unary('Content.Info', this.#content, this.#content.Info, { digest }, signal),
    );
    return response?.info ? toBlobInfo(response.info) : undefined;
  }

  async listContent(signal?: AbortSignal): Promise<BlobInfo[]> {
    signal?.throwIfAborted();
    const call = this.#content.List({ filters: [] }, this.#metadata, {
      deadline: Date.now() + this.#listTimeoutMs,
    });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    const blobs: BlobInfo[] = [];
    try {
      for await (const response of call as AsyncIterable<{ info: WireInfo[] }>) {
        for (const info of response.info) {
          const blob = toBlobInfo(info);
          if (blob) blobs.push(blob);
        }
      }
    } catch (error) {
      signal?.throwIfAborted();
      throw callError('Content.List', error);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return blobs;
  }

  async read(digest: Digest, range?: ReadRange, signal?: AbortSignal): Promise<Readable | undefined> {
    // Info first even when reading from disk: the content directory is shared by all namespaces,
    // and only what this namespace holds may be served.
    const info = await this.info(digest, signal);
    if (!info) return undefined;
    const { start, end } = checkRange(range, info.size);
    if (start === end) return withSignal(new PassThrough().end(), signal);
    const path = this.#contentPath === undefined ? undefined : blobPath(this.#contentPath, digest);
    if (path !== undefined) {
      const stream = await openBlobFile(path, start, end, info.size);
      if (stream) {
        this.#options.onRead?.('disk', digest);
        return withSignal(stream, signal);
      }
    }
    this.#options.onRead?.('grpc', digest);
    return withSignal(this.#readOverGrpc(digest, start, end), signal);
  }

  subscribe(signal: AbortSignal): AsyncIterable<StoreEvent> {
    const events = this.#events;
    const metadata = this.#metadata;
    const filters = this.#filters;
    const onEnd = this.#options.onSubscriptionEnd;
    return (async function* () {
      if (signal.aborted) return;
      const call = events.Subscribe({ filters }, metadata, {});
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      let failure: Error | undefined;
      try {
        for await (const envelope of call as AsyncIterable<WireEnvelope>) {
          if (!envelope.event) continue;
          let event: StoreEvent | undefined;
          try {
            event = decodeEvent(envelope.event.type_url, envelope.event.value);
          } catch (error) {
            // One undecodable payload must not end the stream; report it and carry on.
            onEnd?.(
              new Error(`undecodable ${envelope.event.type_url} event on ${envelope.topic}`, {
                cause: error,
              }),
            );
          }
          if (event) yield event;
        }
      } catch (error) {
        // CANCELLED after our own abort is the normal end; anything else (UNAVAILABLE when
        // containerd restarts) also just ends the iterable: the caller re-subscribes and resyncs.
        if (!signal.aborted) failure = callError('Events.Subscribe', error);
      } finally {
        signal.removeEventListener('abort', onAbort);
        call.cancel();
      }
      if (!signal.aborted) onEnd?.(failure);
    })();
  }

  /** Closes the gRPC connection; streams in flight end with an error. */
  close(): void {
    this.#images.close();
    this.#content.close();
    this.#events.close();
    this.#version.close();
  }

  #readOverGrpc(digest: Digest, start: number, end: number): Readable {
    const call = this.#content.Read({ digest, offset: start, size: end - start }, this.#metadata, {});
    const wanted = end - start;
    let received = 0;
    const bytes = new Transform({
      readableObjectMode: false,
      writableObjectMode: true,
      transform(chunk: { offset: number; data: Buffer }, _encoding, callback) {
        // containerd (1.6 to 2.x) numbers chunks from the start of the read, not of the blob;
        // absolute offsets are accepted too in case that ever changes. A gap means a corrupt
        // stream, not something to paper over.
        if (chunk.offset !== received && chunk.offset !== start + received) {
          callback(
            new Error(`containerd Content.Read: chunk at offset ${chunk.offset}, expected ${received}`),
          );
          return;
        }
        received += chunk.data.length;
        if (received > wanted) {
          callback(new Error(`containerd Content.Read: sent ${received} bytes, ${wanted} asked`));
          return;
        }
        callback(null, chunk.data);
      },
      flush(callback) {
        callback(
          received === wanted
            ? null
            : new Error(`containerd Content.Read: ended after ${received} of ${wanted} bytes`),
        );
      },
    });
    // pipeline gives backpressure (grpc-js reads the next message only when the Transform drains)
    // and tears the call down when the consumer destroys the stream early.
    pipeline(call, bytes, (error) => {
      if (error) call.cancel();
    });
    return bytes;
  }

  #unary<Req, Res>(
    operation: string,
    client: grpc.Client,
    method: UnaryMethod<Req, Res>,
    request: Req,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    signal?.throwIfAborted();
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = method.call(
        client,
        request,
        this.#metadata,
        { deadline: Date.now() + this.#callTimeoutMs },
        (error, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (signal?.aborted) reject(signal.reason);
          else if (error) reject(callError(operation, error));
          else resolve(response as Res);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A failed containerd call; `code` is the gRPC status code (5 = NOT_FOUND, 14 = UNAVAILABLE, …). */
export class ContainerdError extends Error {
  override readonly name = 'ContainerdError';
  constructor(
    message: string,
    readonly code: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function callError(operation: string, error: unknown): ContainerdError {
  const code = isServiceError(error) ? error.code : undefined;
  const details = isServiceError(error)
    ? error.details
    : error instanceof Error
      ? error.message
      : String(error);
  return new ContainerdError(`containerd ${operation}: ${details}`, code, { cause: error });
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number';
}

async function notFoundAsUndefined<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ContainerdError && error.code === grpc.status.NOT_FOUND) return undefined;
    throw error;
  }
}

function toImageRecord(image: WireImage): ImageRecord | undefined {
  const target = image.target;
  if (!target || !isDigest(target.digest)) return undefined;
  const descriptor: Descriptor = {
    mediaType: target.media_type,
    digest: target.digest,
    size: Number(target.size),
  };
  return { name: image.name, target: descriptor };
}

function toBlobInfo(info: WireInfo): BlobInfo | undefined {
  if (!isDigest(info.digest)) return undefined;
  return { digest: info.digest, size: Number(info.size), labels: toLabels(info.labels) };
}

/**
 * Opens the blob file for `[start, end)` or returns undefined when the file is not there (content
 * directory not mounted, or the blob raced away). The file must have the size containerd reported,
 * so a half-visible or replaced file is never served from disk.
 */
async function openBlobFile(
  path: string,
  start: number,
  end: number,
  size: number,
): Promise<Readable | undefined> {
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM') return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size !== size) {
      await handle.close();
      return undefined;
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return new FileBody(handle, start, end);
}

function withSignal(stream: Readable, signal: AbortSignal | undefined): Readable {
  if (signal?.aborted) {
    stream.destroy();
    signal.throwIfAborted();
  }
  return signal ? addAbortSignal(signal, stream) : stream;
}
