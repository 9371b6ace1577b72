// Pure rendering of containerd hosts.toml files. containerd tries `[host.…]` tables in file order,
// then `server`; so our mirror comes first, then any hosts kept from the previous configuration.
import { defaultUpstreamUrl } from '../oci/reference.js';
import { PEILI_HEADER } from './layout.js';

/** A TOML value as found in a hosts.toml (strings, numbers, booleans, arrays and tables). */
export type TomlValue = string | number | bigint | boolean | Date | readonly TomlValue[] | TomlTable;
/** A TOML table; key order is kept. */
export interface TomlTable {
  readonly [key: string]: TomlValue;
}

/** One `[host.'<url>']` table. */
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
  const lines = [PEILI_HEADER];
  const top: Record<string, TomlValue> = {};
  if (options.registry !== undefined) top.server = defaultServer(options.registry);
  // A previous file's own `server` (and the settings that go with it) wins: it may be a
  // pull-through cache or a private endpoint the node relies on.
  for (const [key, value] of Object.entries(options.existing?.top ?? {})) top[key] = value;
  for (const [key, value] of Object.entries(top)) lines.push(`${formatKey(key)} = ${formatValue(value)}`);

  const ours = new Set(options.mirrorTargets);
  for (const target of options.mirrorTargets) {
    const table: Record<string, TomlValue> = {
      capabilities: options.resolve ? ['pull', 'resolve'] : ['pull'],
    };
    if (options.dialTimeoutMs !== undefined) table.dial_timeout = `${options.dialTimeoutMs}ms`;
    lines.push('', ...formatHost({ url: target, table }));
  }
  const kept = (options.existing?.hosts ?? []).filter((host) => !ours.has(host.url));
  if (kept.length > 0 && options.mirrorTargets.length > 0)
    lines.push('', '# Hosts of the previous configuration:');
  for (const host of kept) lines.push('', ...formatHost(host));
  return lines.join('\n') + '\n';
}

function formatHost(host: HostTable): string[] {
  const lines = [`[host.${formatKey(host.url)}]`];
  for (const [key, value] of Object.entries(host.table))
    lines.push(`${formatKey(key)} = ${formatValue(value)}`);
  return lines;
}

/** A TOML key: bare when it can be, else a quoted string. */
export function formatKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : formatString(key);
}

function formatString(text: string): string {
  // Literal strings read best; fall back to a basic string (JSON escapes are valid TOML escapes).
  // eslint-disable-next-line no-control-regex
  return /^[^'\u0000-\u001f\u007f]*$/.test(text) ? `'${text}'` : JSON.stringify(text);
}

/** A TOML value on one line (nested tables become inline tables). */
export function formatValue(value: TomlValue): string {
  if (typeof value === 'string') return formatString(value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return `[${(value as readonly TomlValue[]).map(formatValue).join(', ')}]`;
  const entries = Object.entries(value as TomlTable);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, v]) => `${formatKey(k)} = ${formatValue(v)}`).join(', ')} }`;
}
