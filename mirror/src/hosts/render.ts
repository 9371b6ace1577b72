// Pure rendering of containerd hosts.toml files. containerd tries `[host.…]` tables in file order,
// then `server`; so our mirror comes first, then any hosts kept from the previous configuration.
import { stringify } from 'smol-toml';
import { defaultUpstreamUrl } from '../oci/reference.js';
import { PEILI_HEADER } from './layout.js';

/** A TOML value as found in a hosts.toml (strings, numbers, booleans, arrays and tables). */
export type TomlValue = string | number | bigint | boolean | Date | readonly TomlValue[] | TomlTable;
/** A TOML table; key order is kept. */
export interface TomlTable {
  readonly [key: string]: TomlValue;
}

/** One `[host."<url>"]` table. */
export interface HostTable {
  readonly url: string;
  readonly table: TomlTable;
}

/** What one hosts.toml says: its top-level keys (`server` and its settings) and its hosts in order. */
export interface HostsFile {
  readonly top: TomlTable;
  readonly hosts: readonly HostTable[];
}

/** Inputs of one rendered hosts.toml. */
export interface RenderOptions {
  /** Registry host of the folder, or undefined for `_default` (no `server`). */
  readonly registry: string | undefined;
  /** Mirror endpoints written first, in order; empty for a folder kept only for its existing hosts. */
  readonly mirrorTargets: readonly string[];
  /** `capabilities = ['pull', 'resolve']` when true, else `['pull']`. */
  readonly resolve: boolean;
  /** `dial_timeout` in milliseconds, or undefined to omit it (containerd < 1.7). */
  readonly dialTimeoutMs: number | undefined;
  /** A previous configuration whose hosts go after ours and whose top-level keys are kept. */
  readonly existing?: HostsFile;
}

/** The upstream `server` containerd falls back to for a registry, as containerd itself would choose it. */
export function defaultServer(registry: string): string {
  return defaultUpstreamUrl(registry);
}

export { isLoopbackHost } from '../oci/reference.js';

/** Renders a complete hosts.toml, starting with Peili's header line. */
export function renderHostsToml(options: RenderOptions): string {
  const top: Record<string, TomlValue> = {};
  if (options.registry !== undefined) top.server = defaultServer(options.registry);
  // A previous file's own `server` (and the settings that go with it) wins: it may be a
  // pull-through cache or a private endpoint the node relies on.
  for (const [key, value] of Object.entries(options.existing?.top ?? {})) top[key] = value;
  const sections = [PEILI_HEADER + '\n' + (Object.keys(top).length > 0 ? stringify(top) : '')];

  const ours: Record<string, TomlTable> = {};
  for (const target of options.mirrorTargets) {
    ours[target] = {
      capabilities: options.resolve ? ['pull', 'resolve'] : ['pull'],
      ...(options.dialTimeoutMs !== undefined ? { dial_timeout: `${options.dialTimeoutMs}ms` } : {}),
    };
  }
  if (options.mirrorTargets.length > 0) sections.push(stringify({ host: ours }));
  const targets = new Set(options.mirrorTargets);
  const kept = (options.existing?.hosts ?? []).filter((host) => !targets.has(host.url));
  if (kept.length > 0) {
    const hosts = stringify({ host: Object.fromEntries(kept.map((host) => [host.url, host.table])) });
    sections.push(
      options.mirrorTargets.length > 0 ? `# Hosts of the previous configuration:\n\n${hosts}` : hosts,
    );
  }
  // smol-toml writes the tables in key order, which is insertion order here (URLs are never
  // integer-like keys): containerd tries the hosts in file order.
  return sections.join('\n');
}
