// The public view of a node's content when some registries are private: blobs whose
// distribution-source labels name only private registries, and image records of private
// registries, are invisible. Requests that did not prove access upstream are served through this
// view, so asking for a private digest under a public `ns` (or none) finds nothing, locally or at
// peers (each peer applies the same view to the loop-guarded request it receives).
import { normalizeRegistry } from '../oci/reference.js';
import type { BlobInfo, ContentStore, Digest, ImageRecord, ReadRange } from '../store/content-store.js';
import { distributionSources } from '../store/distribution-sources.js';

/** Host without port, lower case, Docker Hub aliases folded: how containerd's labels name a registry. */
export function labelHost(registry: string): string {
  const normal = normalizeRegistry(registry).toLowerCase();
  if (normal.startsWith('[')) return normal.slice(0, normal.indexOf(']') + 1);
  return normal.replace(/:\d+$/, '');
}

/** True when every source label of a blob names a private registry (and there is at least one). */
export function isPrivateOnly(
  labels: Readonly<Record<string, string>>,
  privateHosts: ReadonlySet<string>,
): boolean {
  const sources = distributionSources(labels);
  return sources.length > 0 && sources.every((source) => privateHosts.has(labelHost(source.registry)));
}

/**
 * Wraps `store` so that content of `registries` only is hidden. Content that also came from a
 * public registry (a shared base layer) stays visible: anyone can fetch it there anyway.
 */
export function hidePrivateContent(store: ContentStore, registries: readonly string[]): ContentStore {
  const hosts = new Set(registries.map(labelHost));
  const privateImage = (name: string): boolean => {
    const slash = name.indexOf('/');
    return slash > 0 && hosts.has(labelHost(name.slice(0, slash)));
  };
  const visible = (info: BlobInfo | undefined): BlobInfo | undefined =>
    info === undefined || isPrivateOnly(info.labels, hosts) ? undefined : info;
  return {
    async listImages(signal?: AbortSignal): Promise<ImageRecord[]> {
      return (await store.listImages(signal)).filter((image) => !privateImage(image.name));
    },
    async getImage(name: string, signal?: AbortSignal) {
      return privateImage(name) ? undefined : store.getImage(name, signal);
    },
    async info(digest: Digest, signal?: AbortSignal) {
      return visible(await store.info(digest, signal));
    },
    async listContent(signal?: AbortSignal) {
      return (await store.listContent(signal)).filter((info) => visible(info) !== undefined);
    },
    async read(digest: Digest, range?: ReadRange, signal?: AbortSignal) {
      if (visible(await store.info(digest, signal)) === undefined) return undefined;
      return store.read(digest, range, signal);
    },
    subscribe: (signal: AbortSignal) => store.subscribe(signal),
  };
}
