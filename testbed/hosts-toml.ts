// containerd registry host configuration (hosts.toml) for tests that set up their own routing,
// e.g. docker.io served by the local registry.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * containerd 1.6.20 (Debian) rejects a hosts.toml that has no `host` table ("invalid `host`
 * tree") and then silently uses the registry's default host; an empty `[host]` table avoids it.
 */
export function withHostTable(toml: string): string {
  const text = toml.endsWith('\n') ? toml : `${toml}\n`;
  return /^\s*\[host[.\]]/m.test(text) ? text : `${text}\n[host]\n`;
}

/**
 * Writes `<configPath>/<registryHost>/hosts.toml` with `toml` as its content (plus an empty
 * `[host]` table when it has none, see {@link withHostTable}), creating folders; returns the
 * file's path. `registryHost` is the host of image references (`docker.io`, `127.0.0.1:5000`,
 * or `_default`).
 */
export async function writeHostsToml(
  configPath: string,
  registryHost: string,
  toml: string,
): Promise<string> {
  if (!/^(_default|[A-Za-z0-9][A-Za-z0-9.-]*(:\d+)?)$/.test(registryHost)) {
    throw new Error(`writeHostsToml: "${registryHost}" is not a registry host (name[:port] or _default)`);
  }
  const dir = join(configPath, registryHost);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'hosts.toml');
  await writeFile(path, withHostTable(toml));
  return path;
}

/**
 * The hosts.toml that sends every request for a registry straight to `serverUrl` (e.g.
 * `http://127.0.0.1:5000`), optionally through mirrors tried first, in order.
 */
export function upstreamHostsToml(
  serverUrl: string,
  mirrors: readonly { url: string; capabilities?: readonly string[] }[] = [],
): string {
  const lines = [`server = ${JSON.stringify(serverUrl)}`];
  for (const mirror of mirrors) {
    lines.push('', `[host.${JSON.stringify(mirror.url)}]`);
    lines.push(
      `  capabilities = [${(mirror.capabilities ?? ['pull', 'resolve']).map((c) => JSON.stringify(c)).join(', ')}]`,
    );
  }
  return withHostTable(`${lines.join('\n')}\n`);
}
