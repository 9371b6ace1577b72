/** A containerd release number, as the Version service reports it (`1.6.20~ds1`, `v2.1.4`). */
export interface ContainerdVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Parses the leading `major.minor[.patch]` of a containerd version string, or undefined. */
export function parseContainerdVersion(version: string): ContainerdVersion | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0) };
}

/** True when containerd understands `dial_timeout` in hosts.toml (1.7 and later); false when unknown. */
export function supportsDialTimeout(version: string): boolean {
  const parsed = parseContainerdVersion(version);
  if (!parsed) return false;
  return parsed.major > 1 || (parsed.major === 1 && parsed.minor >= 7);
}
