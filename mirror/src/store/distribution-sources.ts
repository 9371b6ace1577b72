// containerd records where a blob came from in its content labels; the store's BlobInfo carries
// them as they are. These helpers read them, for whoever must know a blob's registry of origin.

/** containerd's label prefix naming the registry (host without port) a blob was pulled from. */
export const DISTRIBUTION_SOURCE_PREFIX = 'containerd.io/distribution.source.';

/** One `registry host → repository` origin of a blob, read from its distribution-source labels. */
export interface DistributionSource {
  /** The registry host as containerd wrote it: without its port (`127.0.0.1`, `docker.io`). */
  readonly registry: string;
  readonly repository: string;
}

/**
 * Every origin in a blob's `containerd.io/distribution.source.<host>=<repo>[,<repo>…]` labels
 * (they accumulate as the blob is pulled under more names), sorted by registry then repository.
 */
export function distributionSources(labels: Readonly<Record<string, string>>): DistributionSource[] {
  const sources: DistributionSource[] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(DISTRIBUTION_SOURCE_PREFIX)) continue;
    const registry = key.slice(DISTRIBUTION_SOURCE_PREFIX.length);
    if (registry === '') continue;
    for (const repository of value.split(',')) {
      const trimmed = repository.trim();
      if (trimmed !== '') sources.push({ registry, repository: trimmed });
    }
  }
  return sources.sort((a, b) =>
    a.registry === b.registry
      ? a.repository.localeCompare(b.repository)
      : a.registry.localeCompare(b.registry),
  );
}
