// The daemon's own view of its node: can it serve peers at all? Three questions, answered from
// what the node really does, not from what a deploy intended:
//  - mirror: is containerd sending this daemon requests? Yes once one arrived. No when an image
//    of a mirrored registry was pulled after the daemon started and no request came: containerd
//    pulled past the mirror (its registry config does not point here).
//  - layers: does containerd keep layer blobs? An image whose manifest is held but none of its
//    layers is what `discard_unpacked_layers = true` leaves (stock Talos): discarded. An image
//    with all its layers: kept. Images pulled since the daemon started decide when there are any
//    (they show the current config; older ones may predate a change).
//  - runtime: containerd's version (its Version API).
// Pure logic over small interfaces (ContentStore, a version source, a request count), so it runs
// on the in-memory fake in unit tests and against real containerd on the test bed.
import { isIndexMediaType } from '../oci/media-types.js';
import type { ContentStore, Descriptor, Digest, ImageRecord } from '../store/content-store.js';

/** Is containerd sending requests to this daemon? */
export type MirrorState = 'configured' | 'not-configured' | 'unknown';
/** Does containerd keep layer blobs after unpacking? */
export type LayersState = 'kept' | 'discarded' | 'unknown';

/** Every value of the two states, for metrics initialised up front. */
export const MIRROR_STATES: readonly MirrorState[] = ['configured', 'not-configured', 'unknown'];
/** Every layers state. */
export const LAYERS_STATES: readonly LayersState[] = ['kept', 'discarded', 'unknown'];

/** What the daemon reports about its node. */
export interface NodeReport {
  readonly mirror: MirrorState;
  readonly layers: LayersState;
  /** `containerd <version>`, or `unknown` when containerd did not answer. */
  readonly runtime: string;
  /** The evidence behind `layers`. */
  readonly images: {
    /** Images whose manifest could be read. */
    readonly checked: number;
    /** Of those, images with every layer blob present. */
    readonly complete: number;
    /** Of those, images with no layer blob at all. */
    readonly withoutLayers: number;
  };
  /** Requests from containerd seen since the daemon started. */
  readonly requestsSeen: number;
  /** Images of mirrored registries pulled since the daemon started. */
  readonly pulledSinceStart: number;
}

/** containerd's Version API. */
export interface RuntimeVersion {
  containerdVersion(signal?: AbortSignal): Promise<{ readonly version: string }>;
}

/** Collaborators of `createNodeCheck`. */
export interface NodeCheckDeps {
  readonly store: ContentStore;
  readonly runtime: RuntimeVersion;
  /** Requests containerd has sent this daemon so far (not peers'). */
  readonly requestsSeen: () => number | Promise<number>;
}

/** Options of `createNodeCheck`. */
export interface NodeCheckOptions {
  /** Registries mirrored; empty means every registry. @default [] */
  readonly mirroredRegistries?: readonly string[];
  /** Images inspected per check (newest evidence first). @default 50 */
  readonly maxImages?: number;
  /** Largest manifest read, in bytes. @default 4 MiB */
  readonly maxManifestBytes?: number;
}

/** A node check: `check()` runs one round and returns the report `latest()` then holds. */
export interface NodeCheck {
  check(signal?: AbortSignal): Promise<NodeReport>;
  latest(): NodeReport | undefined;
}

/** The registry host of an image name (`docker.io/library/x:1` → `docker.io`), or undefined for `sha256:…`. */
export function imageRegistry(name: string): string | undefined {
  if (name.startsWith('sha256:')) return undefined;
  const first = name.split('/')[0] ?? '';
  return name.includes('/') ? first : undefined;
}

async function readJson(
  store: ContentStore,
  digest: Digest,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  const info = await store.info(digest, signal);
  if (!info || info.size > maxBytes) return undefined;
  const stream = await store.read(digest, undefined, signal);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

type Completeness = 'complete' | 'partial' | 'none' | 'unreadable';

async function layersOf(
  store: ContentStore,
  target: Descriptor,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Completeness> {
  let doc = await readJson(store, target.digest, maxBytes, signal);
  if (doc && (isIndexMediaType(target.mediaType) || Array.isArray(doc.manifests))) {
    // An index: the platform manifest the node pulled is the one it holds.
    const manifests = (doc.manifests ?? []) as Descriptor[];
    doc = undefined;
    for (const m of manifests) {
      if (await store.info(m.digest, signal)) {
        doc = await readJson(store, m.digest, maxBytes, signal);
        break;
      }
    }
  }
  const layers = doc?.layers;
  if (!Array.isArray(layers) || layers.length === 0) return 'unreadable';
  let present = 0;
  for (const layer of layers as Descriptor[]) if (await store.info(layer.digest, signal)) present += 1;
  if (present === layers.length) return 'complete';
  return present === 0 ? 'none' : 'partial';
}

/** Creates a node check over `deps`. */
export function createNodeCheck(deps: NodeCheckDeps, options: NodeCheckOptions = {}): NodeCheck {
  const mirrored = new Set(options.mirroredRegistries ?? []);
  const maxImages = options.maxImages ?? 50;
  const maxBytes = options.maxManifestBytes ?? 4 * 1024 * 1024;
  let initial: Set<string> | undefined;
  let latest: NodeReport | undefined;
  const isMirrored = (name: string): boolean => {
    const registry = imageRegistry(name);
    return registry !== undefined && (mirrored.size === 0 || mirrored.has(registry));
  };

  return {
    latest: () => latest,
    async check(signal) {
      const images = await deps.store.listImages(signal);
      // Several names point at one target (tag, digest, bare config id): judge each target once.
      const byTarget = new Map<string, ImageRecord>();
      for (const image of images)
        if (!byTarget.has(image.target.digest)) byTarget.set(image.target.digest, image);
      const firstRound = initial === undefined;
      initial ??= new Set(images.map((i) => i.name));
      const seenBefore = initial;
      const newNames = firstRound ? [] : images.filter((i) => !seenBefore.has(i.name)).map((i) => i.name);
      const newTargets = new Set(
        images.filter((i) => !seenBefore.has(i.name) && !firstRound).map((i) => i.target.digest),
      );

      // Newest evidence first: images pulled since the daemon started.
      const targets = [...byTarget.values()].sort(
        (a, b) => Number(newTargets.has(b.target.digest)) - Number(newTargets.has(a.target.digest)),
      );
      let checked = 0;
      let complete = 0;
      let withoutLayers = 0;
      let newComplete = 0;
      let newWithout = 0;
      for (const image of targets.slice(0, maxImages)) {
        const c = await layersOf(deps.store, image.target, maxBytes, signal);
        if (c === 'unreadable') continue;
        checked += 1;
        const fresh = newTargets.has(image.target.digest);
        if (c === 'complete') {
          complete += 1;
          if (fresh) newComplete += 1;
        } else if (c === 'none') {
          withoutLayers += 1;
          if (fresh) newWithout += 1;
        }
      }
      let layers: LayersState = 'unknown';
      if (newComplete + newWithout > 0) layers = newComplete > 0 ? 'kept' : 'discarded';
      else if (complete > 0) layers = 'kept';
      else if (withoutLayers > 0) layers = 'discarded';

      const requestsSeen = await deps.requestsSeen();
      // One pull leaves several names (repo:tag, repo@digest): count the images, by target.
      const pulledSinceStart = new Set(
        images.filter((i) => newNames.includes(i.name) && isMirrored(i.name)).map((i) => i.target.digest),
      ).size;
      let mirror: MirrorState = 'unknown';
      if (requestsSeen > 0) mirror = 'configured';
      else if (pulledSinceStart > 0) mirror = 'not-configured';

      let runtime = 'unknown';
      try {
        runtime = `containerd ${(await deps.runtime.containerdVersion(signal)).version}`;
      } catch {
        // containerd not answering is reported by readiness; the runtime stays unknown.
      }
      latest = {
        mirror,
        layers,
        runtime,
        images: { checked, complete, withoutLayers },
        requestsSeen,
        pulledSinceStart,
      };
      return latest;
    },
  };
}
