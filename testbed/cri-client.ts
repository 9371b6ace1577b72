// A small CRI client (the part of crictl the tests need) over @grpc/grpc-js and cri-min.proto:
// image pulls go through containerd's own resolver, so hosts.toml and mirrors are exercised
// exactly as the kubelet would exercise them.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** An image as the CRI ListImages/ImageStatus calls describe it. */
export interface CriImage {
  /** The image id: `sha256:<config digest>`. */
  readonly id: string;
  readonly repoTags: string[];
  readonly repoDigests: string[];
  /** Size in bytes as containerd reports it. */
  readonly size: number;
}

/** The CRI Version reply. */
export interface CriVersion {
  readonly version: string;
  readonly runtimeName: string;
  readonly runtimeVersion: string;
  readonly runtimeApiVersion: string;
}

/** CRI `AuthConfig`: the credentials kubelet passes with a pull (from an image pull secret). */
export interface CriAuth {
  readonly username: string;
  readonly password: string;
  /** The registry the secret is for (kubelet sets it from the pull secret's key). */
  readonly serverAddress?: string;
}

/** Options of {@link createCriClient}. */
export interface CriClientOptions {
  /** Deadline of each call; default 120000 ms (a big pull through a slow mirror takes a while). */
  readonly timeoutMs?: number;
}

/** A CRI client bound to one containerd socket. */
export interface CriClient {
  /**
   * PullImage; resolves to the `image_ref` containerd returns (`sha256:<config digest>`). `auth`
   * is what kubelet sends from a pull secret for the image's registry.
   */
  pullImage(ref: string, signal?: AbortSignal, auth?: CriAuth): Promise<string>;
  /** ListImages, optionally filtered by reference. */
  listImages(filter?: string, signal?: AbortSignal): Promise<CriImage[]>;
  /** ImageStatus; undefined when containerd does not know the image. */
  imageStatus(ref: string, signal?: AbortSignal): Promise<CriImage | undefined>;
  /** RemoveImage (removing an unknown image is not an error in CRI). */
  removeImage(ref: string, signal?: AbortSignal): Promise<void>;
  /** RuntimeService.Version. */
  version(signal?: AbortSignal): Promise<CriVersion>;
  /** Closes the channel. */
  close(): void;
}

/** Path of the hand-written CRI proto file. */
export const CRI_PROTO_PATH = fileURLToPath(new URL('./cri-min.proto', import.meta.url));

interface WireImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string | number;
}

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: Callback<unknown>,
) => grpc.ClientUnaryCall;
type ServiceClient = grpc.Client & Record<string, UnaryMethod>;
type ServiceCtor = new (address: string, credentials: grpc.ChannelCredentials) => ServiceClient;

let loaded: { imageService: ServiceCtor; runtimeService: ServiceCtor } | undefined;

function services(): { imageService: ServiceCtor; runtimeService: ServiceCtor } {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(CRI_PROTO_PATH, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { ImageService: ServiceCtor; RuntimeService: ServiceCtor } };
  };
  loaded = { imageService: root.runtime.v1.ImageService, runtimeService: root.runtime.v1.RuntimeService };
  return loaded;
}

function toImage(wire: WireImage): CriImage {
  return { id: wire.id, repoTags: wire.repo_tags, repoDigests: wire.repo_digests, size: Number(wire.size) };
}

/** Opens a CRI client on a containerd socket path (`/…/containerd.sock`, no `unix://` needed). */
export function createCriClient(socket: string, options: CriClientOptions = {}): CriClient {
  const { imageService, runtimeService } = services();
  const address = socket.startsWith('unix:') ? socket : `unix://${socket}`;
  const credentials = grpc.credentials.createInsecure();
  const images = new imageService(address, credentials);
  const runtime = new runtimeService(address, credentials);
  const timeoutMs = options.timeoutMs ?? 120000;

  const call = <T>(
    client: ServiceClient,
    method: string,
    request: object,
    signal?: AbortSignal,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason instanceof Error ? signal.reason : new Error(`CRI ${method} aborted`));
        return;
      }
      const fn = client[method];
      if (typeof fn !== 'function') {
        reject(new Error(`CRI method ${method} is not in cri-min.proto`));
        return;
      }
      const onAbort = (): void => {
        pending.cancel();
      };
      const pending = fn.call(
        client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err: grpc.ServiceError | null, value?: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(new Error(`CRI ${method}: ${err.details || err.message}`, { cause: err }));
          else resolve(value as T);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  return {
    pullImage: async (ref, signal, auth) => {
      const request = {
        image: { image: ref },
        ...(auth
          ? {
              auth: {
                username: auth.username,
                password: auth.password,
                server_address: auth.serverAddress ?? '',
              },
            }
          : {}),
      };
      const reply = await call<{ image_ref: string }>(images, 'PullImage', request, signal);
      return reply.image_ref;
    },
    listImages: async (filter, signal) => {
      const request = filter === undefined ? {} : { filter: { image: { image: filter } } };
      const reply = await call<{ images: WireImage[] }>(images, 'ListImages', request, signal);
      return reply.images.map(toImage);
    },
    imageStatus: async (ref, signal) => {
      const reply = await call<{ image: WireImage | null }>(
        images,
        'ImageStatus',
        { image: { image: ref } },
        signal,
      );
      return reply.image ? toImage(reply.image) : undefined;
    },
    removeImage: async (ref, signal) => {
      await call<object>(images, 'RemoveImage', { image: { image: ref } }, signal);
    },
    version: async (signal) => {
      const reply = await call<{
        version: string;
        runtime_name: string;
        runtime_version: string;
        runtime_api_version: string;
      }>(runtime, 'Version', { version: 'v1' }, signal);
      return {
        version: reply.version,
        runtimeName: reply.runtime_name,
        runtimeVersion: reply.runtime_version,
        runtimeApiVersion: reply.runtime_api_version,
      };
    },
    close: () => {
      images.close();
      runtime.close();
    },
  };
}
