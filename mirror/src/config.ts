// The one place that knows the daemon's flags: names, environment variables, defaults and how a
// value is parsed. `parseConfig` is pure (argv and env in, frozen config out) so every rule is
// testable without a process; the usage text and the docs checks are generated from `FLAGS`.
import { isIP } from 'node:net';
import { networkInterfaces as osNetworkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/** The `peili` subcommands. */
export const SUBCOMMANDS = ['registry', 'configure', 'cleanup', 'version'] as const;
/** One `peili` subcommand. */
export type Subcommand = (typeof SUBCOMMANDS)[number];

/** Log levels, most severe first (pino's names). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
/** One log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** When tags may be answered by the mirror instead of upstream. */
export const RESOLVE_TAGS_MODES = ['upstream-down', 'always', 'never'] as const;
/** One `--resolve-tags` mode. */
export type ResolveTagsMode = (typeof RESOLVE_TAGS_MODES)[number];

/** A listen or peer address. `host` is `0.0.0.0` when the flag gave only `:port`. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Configuration of `peili registry`, the daemon. Durations are milliseconds. */
export interface RegistryConfig {
  readonly command: 'registry';
  readonly logLevel: LogLevel;
  readonly containerdSock: string;
  readonly containerdNamespace: string;
  readonly containerdContentPath: string;
  readonly registryAddr: Address;
  readonly routerAddr: Address;
  readonly metricsAddr: Address;
  /** Host (IP or name, no port) peers use to reach this node. */
  readonly advertiseHost: string;
  /** Static members as `host:routerPort`. */
  readonly members: readonly Address[];
  /** Headless Service name resolved for members, or undefined. */
  readonly membersDns: string | undefined;
  readonly membersRefresh: number;
  /** Registry hosts mirrored; empty means all. */
  readonly mirroredRegistries: readonly string[];
  readonly lookupTimeout: number;
  readonly resolveTags: ResolveTagsMode;
  /** Tag references `registry/repository:tag` matching any of these are never resolved by the mirror. */
  readonly resolveTagsFilter: readonly RegExp[];
  readonly upstreamProbeTimeout: number;
  readonly shutdownTimeout: number;
  /** File holding the shared secret peers authenticate with, or undefined (no peer auth). */
  readonly peerSecretFile: string | undefined;
  /** Registry requests served at once; more get 503 + Retry-After (containerd tries the next host). */
  readonly maxConcurrentRequests: number;
  /** Registries whose content is served only to requests whose credentials the upstream accepts. */
  readonly privateRegistries: readonly string[];
  /** Mutual TLS between peers (all four `--peer-tls-*` flags), or undefined: plain HTTP. */
  readonly peerTls: PeerTlsConfig | undefined;
}

/** The files and identity name of mutual TLS between peers. */
export interface PeerTlsConfig {
  /** PEM certificate (chain) this daemon presents to peers, as server and as client. */
  readonly certFile: string;
  /** PEM private key of that certificate. */
  readonly keyFile: string;
  /** PEM CA certificate(s) a peer's certificate must chain to. */
  readonly caFile: string;
  /** DNS name (subjectAltName) every peer certificate must carry; peers are reached by IP. */
  readonly name: string;
}

/** The flags of peer TLS: given all together or not at all. */
export const PEER_TLS_FLAG_NAMES = Object.freeze([
  'peer-tls-cert-file',
  'peer-tls-key-file',
  'peer-tls-ca-file',
  'peer-tls-name',
] as const);

/** Configuration of `peili configure`, which writes containerd's hosts.toml files. */
export interface ConfigureConfig {
  readonly command: 'configure';
  readonly logLevel: LogLevel;
  readonly containerdSock: string;
  /** Registry hosts mirrored; empty means all (`_default`). */
  readonly mirroredRegistries: readonly string[];
  readonly configPath: string;
  /** Mirror endpoints as normalised origins, e.g. `http://10.0.0.7:29999`. */
  readonly mirrorTargets: readonly string[];
  readonly prependExisting: boolean;
  readonly resolve: boolean;
  readonly dialTimeout: number;
  /** containerd version given on the command line; undefined means ask containerd. */
  readonly containerdVersion: string | undefined;
}

/** Configuration of `peili cleanup`, which restores containerd's registry config path. */
export interface CleanupConfig {
  readonly command: 'cleanup';
  readonly logLevel: LogLevel;
  readonly configPath: string;
}

/** Configuration of `peili version`. */
export interface VersionConfig {
  readonly command: 'version';
  readonly logLevel: LogLevel;
}

/** `--help` (or no subcommand): the usage text to print, exit code 0. */
export interface HelpRequest {
  readonly command: 'help';
  readonly usage: string;
}

/** What `parseConfig` returns. */
export type Config = RegistryConfig | ConfigureConfig | CleanupConfig | VersionConfig | HelpRequest;

/** A configuration error; the message names the flag (or the subcommand) at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** How a flag's text is parsed. */
export type FlagKind =
  | 'string'
  | 'path'
  | 'duration'
  | 'address'
  | 'address-list'
  | 'host'
  | 'dns-name'
  | 'registry-list'
  | 'regex-list'
  | 'url-list'
  | 'boolean'
  | 'enum'
  | 'version'
  | 'integer';

/** One command-line flag: the single source of names, defaults, env variables and help. */
export interface FlagSpec {
  /** Flag name without dashes, e.g. `lookup-timeout`. */
  readonly name: string;
  /** Property of the parsed config, e.g. `lookupTimeout`. */
  readonly key: string;
  /** Environment variable, e.g. `PEILI_LOOKUP_TIMEOUT`. */
  readonly env: string;
  readonly commands: readonly Subcommand[];
  readonly kind: FlagKind;
  /** Default as a user would type it (parsed like any value); undefined = no default. */
  readonly default: string | undefined;
  /** How the default reads in docs when it is not a literal value. */
  readonly defaultText?: string;
  /** Allowed values of an `enum` flag. */
  readonly values?: readonly string[];
  readonly required?: boolean;
  /** One line for `--help` and the docs. */
  readonly description: string;
}

const ALL: readonly Subcommand[] = SUBCOMMANDS;

function flag(
  name: string,
  commands: readonly Subcommand[],
  kind: FlagKind,
  def: string | undefined,
  description: string,
  extra: Partial<Pick<FlagSpec, 'defaultText' | 'values' | 'required'>> = {},
): FlagSpec {
  const key = name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const env = `PEILI_${name.toUpperCase().replace(/-/g, '_')}`;
  return Object.freeze({
    name,
    key,
    env,
    commands: Object.freeze([...commands]),
    kind,
    default: def,
    description,
    ...extra,
  });
}

/** Every flag of every subcommand, in help order. Defaults live here and nowhere else. */
export const FLAGS: readonly FlagSpec[] = Object.freeze([
  flag('log-level', ALL, 'enum', 'info', 'log level', { values: LOG_LEVELS }),
  flag(
    'containerd-sock',
    ['registry', 'configure'],
    'path',
    '/run/containerd/containerd.sock',
    "containerd's gRPC socket",
  ),
  flag(
    'containerd-namespace',
    ['registry'],
    'string',
    'k8s.io',
    'containerd namespace whose content is served',
  ),
  flag(
    'containerd-content-path',
    ['registry'],
    'path',
    '/var/lib/containerd/io.containerd.content.v1.content',
    'content store directory, read directly when present',
  ),
  flag(
    'registry-addr',
    ['registry'],
    'address',
    ':5000',
    'listen address of the registry API (the hostPort targets it)',
  ),
  flag('router-addr', ['registry'], 'address', ':5001', 'listen address of the peer protocol'),
  flag('metrics-addr', ['registry'], 'address', ':9090', 'listen address of /metrics, /readyz, /livez'),
  flag(
    'advertise-host',
    ['registry'],
    'host',
    undefined,
    "address peers use to reach this node's registry and router",
    {
      defaultText: 'env POD_IP, else first non-internal IPv4',
    },
  ),
  flag('members', ['registry'], 'address-list', '', 'static member list host:routerPort,…'),
  flag('members-dns', ['registry'], 'string', '', 'headless Service name resolved for members (A and AAAA)'),
  flag('members-refresh', ['registry'], 'duration', '5s', 'how often the member set is refreshed'),
  flag(
    'mirrored-registries',
    ['registry', 'configure'],
    'registry-list',
    '',
    'registries mirrored, e.g. docker.io,ghcr.io (empty = all; configure writes _default)',
  ),
  flag('lookup-timeout', ['registry'], 'duration', '20ms', 'budget for the first owner answer of a lookup'),
  flag('resolve-tags', ['registry'], 'enum', 'upstream-down', 'when tags are resolved from peers/local', {
    values: RESOLVE_TAGS_MODES,
  }),
  flag(
    'resolve-tags-filter',
    ['registry'],
    'regex-list',
    '',
    'regexes of registry/repository:tag never resolved by the mirror (a literal comma is written \\,)',
  ),
  flag(
    'upstream-probe-timeout',
    ['registry'],
    'duration',
    '500ms',
    'timeout of the upstream /v2/ reachability probe',
  ),
  flag(
    'shutdown-timeout',
    ['registry'],
    'duration',
    '10s',
    'how long in-flight streams may finish after SIGTERM',
  ),
  flag(
    'peer-secret-file',
    ['registry'],
    'path',
    undefined,
    'file with the shared secret peers authenticate with (optional)',
  ),
  flag(
    'max-concurrent-requests',
    ['registry'],
    'integer',
    '64',
    'registry requests served at once; more get 503 + Retry-After so containerd tries the next host',
  ),
  flag(
    'private-registries',
    ['registry'],
    'registry-list',
    '',
    'registries whose content is served only to requests the upstream authorizes (401 challenge + HEAD check)',
  ),
  flag(
    'peer-tls-cert-file',
    ['registry'],
    'path',
    undefined,
    'PEM certificate presented to peers (mutual TLS between peers when the four --peer-tls-* flags are set)',
  ),
  flag('peer-tls-key-file', ['registry'], 'path', undefined, 'PEM private key of --peer-tls-cert-file'),
  flag(
    'peer-tls-ca-file',
    ['registry'],
    'path',
    undefined,
    "PEM CA certificate(s) a peer's certificate must chain to",
  ),
  flag(
    'peer-tls-name',
    ['registry'],
    'dns-name',
    undefined,
    'DNS name every peer certificate must carry (checked on both sides; peers are reached by IP)',
  ),
  flag(
    'config-path',
    ['configure', 'cleanup'],
    'path',
    '/etc/containerd/certs.d',
    'containerd registry config path (Talos: /etc/cri/conf.d/hosts)',
  ),
  flag(
    'mirror-targets',
    ['configure'],
    'url-list',
    undefined,
    'mirror endpoints written as [host], e.g. http://10.0.0.7:29999',
    {
      required: true,
    },
  ),
  flag(
    'prepend-existing',
    ['configure'],
    'boolean',
    'false',
    'keep the existing hosts (and certs) after ours',
  ),
  flag('resolve', ['configure'], 'boolean', 'true', "capabilities = ['pull','resolve'] (else ['pull'])"),
  flag('dial-timeout', ['configure'], 'duration', '200ms', 'written only for containerd >= 1.7'),
  flag(
    'containerd-version',
    ['configure'],
    'version',
    undefined,
    'override the detected containerd version',
    {
      defaultText: 'detected via the socket',
    },
  ),
]);

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `250ms`, `5s`, `2m`, `1h` (decimals allowed) to whole milliseconds, or undefined. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNIT_MS[match[2]!]!);
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');

function isHostname(text: string): boolean {
  return text.length <= 253 && HOSTNAME.test(text);
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Parses `:5000`, `127.0.0.2:5000`, `node-1:5000` or `[::1]:5000`; undefined when malformed. */
export function parseAddress(text: string, allowEmptyHost: boolean): Address | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']:');
    if (close < 0) return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') {
      if (!allowEmptyHost) return undefined;
      host = '0.0.0.0';
    } else if (isIP(host) !== 4 && !isHostname(host)) {
      return undefined;
    }
  }
  const port = parsePort(portText);
  return port === undefined ? undefined : { host, port };
}

/** True for a registry host as containerd names it: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
export function isRegistryHost(text: string): boolean {
  if (parseAddress(text, false) !== undefined) return true;
  return isIP(text) === 4 || isHostname(text);
}

/** Splits a comma-separated list; for regexes `\\,` is a comma inside an item (`a{1\\,3}`). */
function splitList(text: string, keepEscapedCommas: boolean): string[] {
  if (text.trim() === '') return [];
  if (!keepEscapedCommas) return text.split(',').map((part) => part.trim());
  return text.split(/(?<!\\),/).map((part) => part.trim().replaceAll('\\,', ','));
}

/** Outcome of one value parse: the value or the sentence after `--flag: `. */
type Parsed = { ok: true; value: unknown } | { ok: false; message: string };

function ok(value: unknown): Parsed {
  return { ok: true, value };
}
function fail(message: string): Parsed {
  return { ok: false, message };
}

function parseListItems(items: string[], each: (item: string) => Parsed): Parsed {
  const values: unknown[] = [];
  for (const item of items) {
    if (item === '') return fail('empty item in comma-separated list');
    const parsed = each(item);
    if (!parsed.ok) return parsed;
    values.push(parsed.value);
  }
  return ok(Object.freeze(values));
}

function parseValue(spec: FlagSpec, text: string): Parsed {
  switch (spec.kind) {
    case 'string':
      return ok(text === '' ? undefined : text);
    case 'path':
      if (text === '') return fail('expected a path, got ""');
      if (text.includes('\0')) return fail('a path cannot contain NUL');
      return ok(text);
    case 'duration': {
      const ms = parseDuration(text);
      return ms === undefined
        ? fail(`expected a duration like 20ms or 5s, got ${JSON.stringify(text)}`)
        : ok(ms);
    }
    case 'address': {
      const address = parseAddress(text, true);
      return address === undefined
        ? fail(`expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got ${JSON.stringify(text)}`)
        : ok(Object.freeze(address));
    }
    case 'address-list':
      return parseListItems(splitList(text, false), (item) => {
        const address = parseAddress(item, false);
        return address === undefined
          ? fail(`expected host:port items like 10.0.0.7:5001, got ${JSON.stringify(item)}`)
          : ok(Object.freeze(address));
      });
    case 'host':
      return isIP(text) !== 0 || isHostname(text)
        ? ok(text)
        : fail(`expected an IP address or a host name without port, got ${JSON.stringify(text)}`);
    case 'dns-name':
      return isIP(text) === 0 && isHostname(text)
        ? ok(text.toLowerCase())
        : fail(`expected a DNS name like peili-peer.kube-system, got ${JSON.stringify(text)}`);
    case 'registry-list': {
      const parsed = parseListItems(splitList(text, false), (item) =>
        isRegistryHost(item)
          ? ok(item.toLowerCase())
          : fail(`expected registry hosts like docker.io or 127.0.0.1:5000, got ${JSON.stringify(item)}`),
      );
      // A registry listed twice would be written twice; keep the first.
      return parsed.ok ? ok(Object.freeze([...new Set(parsed.value as string[])])) : parsed;
    }
    case 'regex-list':
      return parseListItems(splitList(text, true), (item) => {
        try {
          return ok(new RegExp(item));
        } catch (error) {
          return fail(`invalid regular expression ${JSON.stringify(item)}: ${(error as Error).message}`);
        }
      });
    case 'url-list': {
      const parsed = parseListItems(splitList(text, false), parseMirrorTarget);
      if (!parsed.ok) return parsed;
      const urls = parsed.value as string[];
      if (urls.length === 0) return fail('expected at least one URL like http://10.0.0.7:29999');
      return ok(Object.freeze([...new Set(urls)]));
    }
    case 'boolean':
      if (text === 'true') return ok(true);
      if (text === 'false') return ok(false);
      return fail(`expected true or false, got ${JSON.stringify(text)}`);
    case 'enum':
      return spec.values!.includes(text)
        ? ok(text)
        : fail(`expected one of ${spec.values!.join(', ')}, got ${JSON.stringify(text)}`);
    case 'integer':
      return /^[1-9]\d{0,8}$/.test(text)
        ? ok(Number(text))
        : fail(`expected a whole number from 1 to 999999999, got ${JSON.stringify(text)}`);
    case 'version':
      return /^v?\d+\.\d+/.test(text)
        ? ok(text)
        : fail(`expected a version like 1.7.2, got ${JSON.stringify(text)}`);
  }
}

/** Validates one mirror endpoint URL and returns its origin (`http://10.0.0.7:29999`). */
function parseMirrorTarget(text: string): Parsed {
  const got = JSON.stringify(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`expected a URL like http://10.0.0.7:29999, got ${got}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return fail(`expected an http or https URL, got ${got}`);
  if (url.hostname === '') return fail(`expected a URL with a host, got ${got}`);
  if (url.username !== '' || url.password !== '')
    return fail(`credentials are not allowed in a mirror URL, got ${got}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return fail(`expected a URL without path, query or fragment, got ${got}`);
  }
  if (url.port === '0') return fail(`expected a port between 1 and 65535, got ${got}`);
  return ok(url.origin);
}

/**
 * Moves the four `--peer-tls-*` values into one `peerTls` object: all four or none, else a
 * ConfigError naming the first flag missing.
 */
function groupPeerTls(config: Record<string, unknown>): PeerTlsConfig | undefined {
  const specs = PEER_TLS_FLAG_NAMES.map((name) => FLAGS.find((spec) => spec.name === name)!);
  const values = specs.map((spec) => config[spec.key] as string | undefined);
  for (const spec of specs) delete config[spec.key];
  const given = specs.filter((_spec, i) => values[i] !== undefined);
  if (given.length === 0) return undefined;
  const missing = specs.find((_spec, i) => values[i] === undefined);
  if (missing) {
    throw new ConfigError(
      `--${missing.name}: required with --${given[0]!.name} (peer TLS needs all of ${PEER_TLS_FLAG_NAMES.map((n) => `--${n}`).join(', ')})`,
    );
  }
  const [certFile, keyFile, caFile, name] = values as string[];
  return Object.freeze({ certFile: certFile!, keyFile: keyFile!, caFile: caFile!, name: name! });
}

/** The interfaces `--advertise-host`'s default is picked from (injectable for tests). */
export interface ConfigProbe {
  networkInterfaces(): NodeJS.Dict<NetworkInterfaceInfo[]>;
}

const defaultProbe: ConfigProbe = { networkInterfaces: osNetworkInterfaces };

/** The first non-internal IPv4 address, by interface name order, or undefined. */
export function firstExternalIPv4(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | undefined {
  for (const name of Object.keys(interfaces).sort()) {
    for (const info of interfaces[name] ?? []) {
      if (info.family === 'IPv4' && !info.internal) return info.address;
    }
  }
  return undefined;
}

/** The flags of one subcommand, in help order. */
export function flagsFor(command: Subcommand): FlagSpec[] {
  return FLAGS.filter((spec) => spec.commands.includes(command));
}

const SUMMARY: Record<Subcommand, string> = {
  registry: 'run the node-local registry mirror daemon',
  configure: "write containerd's hosts.toml files pointing at the mirror",
  cleanup: "restore containerd's registry config path as it was before configure",
  version: 'print the version and exit',
};

/** Usage text of one subcommand (or of `peili` itself), generated from `FLAGS`. */
export function usage(command?: Subcommand): string {
  if (command === undefined) {
    const lines = ['Usage: peili <subcommand> [flags]', '', 'Subcommands:'];
    for (const name of SUBCOMMANDS) lines.push(`  ${name.padEnd(10)} ${SUMMARY[name]}`);
    lines.push('', 'Run `peili <subcommand> --help` for its flags.');
    return lines.join('\n') + '\n';
  }
  const lines = [
    `Usage: peili ${command} [flags]`,
    '',
    SUMMARY[command],
    '',
    'Flags (each also read from its environment variable; flags win):',
  ];
  for (const spec of flagsFor(command)) {
    const value = spec.kind === 'boolean' ? '[=true|false]' : ' <value>';
    const def = spec.required
      ? 'required'
      : `default: ${spec.defaultText ?? (spec.default === undefined || spec.default === '' ? '(empty)' : spec.default)}`;
    lines.push(`  --${spec.name}${value}`, `      ${spec.description} (${def}; env ${spec.env})`);
    if (spec.values) lines.push(`      one of: ${spec.values.join(', ')}`);
  }
  lines.push('  --help', '      print this help');
  return lines.join('\n') + '\n';
}

function isSubcommand(text: string): text is Subcommand {
  return (SUBCOMMANDS as readonly string[]).includes(text);
}

/**
 * Parses the arguments after the executable (`process.argv.slice(2)`) and the environment into the
 * frozen configuration of the chosen subcommand. Flags win over `PEILI_*` variables, which win over
 * defaults; an empty variable counts as unset. Throws ConfigError naming the flag at fault.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  probe: ConfigProbe = defaultProbe,
): Config {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    return Object.freeze({ command: 'help', usage: usage() });
  }
  if (!isSubcommand(first)) {
    throw new ConfigError(
      `unknown subcommand ${JSON.stringify(first)}; expected one of ${SUBCOMMANDS.join(', ')}`,
    );
  }
  const command = first;
  const specs = new Map(flagsFor(command).map((spec) => [spec.name, spec]));

  // Collect the raw text given on the command line.
  const given = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--help' || arg === '-h') return Object.freeze({ command: 'help', usage: usage(command) });
    if (!arg.startsWith('--') || arg === '--') {
      throw new ConfigError(
        `unexpected argument ${JSON.stringify(arg)} for "${command}"; flags look like --name=value`,
      );
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs.get(name);
    if (!spec) {
      const elsewhere = FLAGS.find((other) => other.name === name);
      throw new ConfigError(
        elsewhere ? `--${name}: not a flag of "${command}"` : `--${name}: unknown flag for "${command}"`,
      );
    }
    if (given.has(name)) throw new ConfigError(`--${name}: given more than once`);
    let text: string;
    if (eq >= 0) {
      text = arg.slice(eq + 1);
    } else if (spec.kind === 'boolean') {
      text = 'true';
    } else {
      const next = rest[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`--${name}: missing value`);
      text = next;
      i++;
    }
    given.set(name, text);
  }

  const config: Record<string, unknown> = { command };
  for (const spec of specs.values()) {
    const fromFlag = given.get(spec.name);
    const fromEnv = env[spec.env] === '' ? undefined : env[spec.env];
    const text = fromFlag ?? fromEnv ?? spec.default;
    const source =
      fromFlag === undefined && fromEnv !== undefined
        ? `--${spec.name} (from ${spec.env})`
        : `--${spec.name}`;
    if (text === undefined) {
      if (spec.required) throw new ConfigError(`--${spec.name}: required (or set ${spec.env})`);
      config[spec.key] = undefined;
      continue;
    }
    const parsed = parseValue(spec, text);
    if (!parsed.ok) throw new ConfigError(`${source}: ${parsed.message}`);
    config[spec.key] = parsed.value;
  }

  if (command === 'registry' && config.advertiseHost === undefined) {
    const fromPod = env.POD_IP === '' ? undefined : env.POD_IP;
    const host = fromPod ?? firstExternalIPv4(probe.networkInterfaces());
    if (host === undefined) {
      throw new ConfigError(
        '--advertise-host: no non-internal IPv4 address found; set --advertise-host or POD_IP',
      );
    }
    if (isIP(host) === 0 && !isHostname(host)) {
      throw new ConfigError(`POD_IP: expected an IP address, got ${JSON.stringify(host)}`);
    }
    config.advertiseHost = host;
  }
  if (command === 'registry') config.peerTls = groupPeerTls(config);
  return Object.freeze(config) as unknown as Config;
}
