/** Major and minor of a containerd version such as `1.6.20~ds1`, `v1.7.2` or `2.0.0-rc.1`; undefined if unreadable. */
export function parseContainerdVersion(version: string): { major: number; minor: number } | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

/**
 * True when containerd understands `dial_timeout` in hosts.toml (1.7 and later). An unknown
 * version counts as 1.6: writing the key there buys nothing, leaving it out is always safe.
 */
export function supportsDialTimeout(version: string | undefined): boolean {
  const parsed = version === undefined ? undefined : parseContainerdVersion(version);
  if (!parsed) return false;
  return parsed.major > 1 || (parsed.major === 1 && parsed.minor >= 7);
}
