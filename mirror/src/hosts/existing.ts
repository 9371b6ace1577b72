// Reading a hosts.toml that was there before Peili (for --prepend-existing): its hosts in file
// order, its top-level settings, and the cert files it points at (`ca`, `client`).
import { parse, TomlError } from 'smol-toml';
import type { HostsFile, TomlTable, TomlValue } from './render.js';

/** A hosts.toml that cannot be used; the message says which file and why. */
export class HostsTomlError extends Error {
  override readonly name = 'HostsTomlError';
}

/** Parses a hosts.toml into its top-level keys and its `[host.…]` tables, in file order. */
export function parseHostsToml(text: string, source = 'hosts.toml'): HostsFile {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof TomlError ? error.message.split('\n')[0] : String(error);
    throw new HostsTomlError(`${source}: not valid TOML: ${reason}`);
  }
  const { host, ...top } = doc;
  const hosts: { url: string; table: TomlTable }[] = [];
  if (host !== undefined) {
    if (!isTable(host))
      throw new HostsTomlError(`${source}: "host" must be a table of [host.'<url>'] tables`);
    // smol-toml keeps insertion order, which is file order: the order containerd tries hosts in.
    for (const [url, table] of Object.entries(host)) {
      if (!isTable(table)) throw new HostsTomlError(`${source}: host ${JSON.stringify(url)} must be a table`);
      hosts.push({ url, table: table as TomlTable });
    }
  }
  return { top: top as TomlTable, hosts };
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Every cert file path a host table (or the top level) references through `ca` and `client`. */
export function certPaths(table: TomlTable): string[] {
  const paths: string[] = [];
  mapCertPaths(table, (path) => {
    paths.push(path);
    return path;
  });
  return paths;
}

/**
 * A copy of `table` with every `ca` and `client` path passed through `map`. containerd accepts
 * `ca` as a string or a list, `client` as a string, a list of strings or a list of [cert, key].
 */
export function mapCertPaths(table: TomlTable, map: (path: string) => string): TomlTable {
  const out: Record<string, TomlValue> = { ...table };
  const walk = (value: TomlValue): TomlValue => {
    if (typeof value === 'string') return map(value);
    if (Array.isArray(value)) return (value as readonly TomlValue[]).map(walk);
    return value;
  };
  if (table.ca !== undefined) out.ca = walk(table.ca);
  if (table.client !== undefined) out.client = walk(table.client);
  return out;
}
