// The only reader of the stack configuration. `parseStackConfig` is pure: it takes the raw config
// strings (and which keys are secrets) and returns a frozen, typed config, or throws one
// `StackConfigError` listing every problem with the key it belongs to, before any resource exists.
import * as pulumi from '@pulumi/pulumi';
import type { GrafanaDashboardMode, LogLevel, ResolveTags } from './mirror-values.js';
import {
  APPLY_MODES,
  type ApplyMode,
  type ClientConfiguration,
  type MachineSecrets,
  type MachineType,
} from './talos/types.js';

/** The Pulumi config namespace of every key (the project name). */
export const CONFIG_NAMESPACE = 'peili';

/** How the chart reaches the cluster. */
export type DeployMode = 'helmrelease' | 'kustomization' | 'bootstrap';

/** A Talos node the containerd patch is applied to. */
export interface TalosNode {
  /** Short name, used in resource names and outputs. */
  readonly name: string;
  /** Node address (IP or hostname) as Talos and the kubelet know it. */
  readonly address: string;
  /** Talos API endpoint used to reach it. @default address */
  readonly endpoint: string;
  /** Machine type its configuration was generated for. */
  readonly machineType: MachineType;
  /** The node's own patches, exactly those it was configured with. @default [] */
  readonly configPatches: readonly string[];
}

/** Talos settings of a stack. */
export interface TalosConfig {
  /** Kubernetes API endpoint the machine configs were generated with. */
  readonly clusterEndpoint: string;
  /** Talos version contract of the machine configs, e.g. `v1.11`. */
  readonly talosVersion: string;
  /** Kubernetes version the machine configs were generated with. @default provider's */
  readonly kubernetesVersion?: string;
  /** Apply mode. @default 'staged_if_needing_reboot' */
  readonly applyMode: ApplyMode;
  /** Cluster-wide patches the machine configs were generated with. @default [] */
  readonly configPatches: readonly string[];
  /** The nodes. */
  readonly nodes: readonly TalosNode[];
  /** Talos API client credentials (secret). */
  readonly clientConfiguration: pulumi.Output<ClientConfiguration>;
  /** The cluster's machine secrets bundle (secret). */
  readonly machineSecrets: pulumi.Output<MachineSecrets>;
}

/** A namespaced object reference. */
export interface ObjectRef {
  readonly name: string;
  readonly namespace: string;
}

/** The typed, validated configuration of one stack (one cluster). */
export interface StackConfig {
  /** Cluster name (DNS label). */
  readonly clusterName: string;
  /** kubeconfig of the cluster (secret). */
  readonly kubeconfig: pulumi.Output<string>;
  /** Talos settings; absent when `talos.enabled` is false. */
  readonly talos?: TalosConfig;
  /** Where the chart comes from. */
  readonly chart: { readonly url: string; readonly version: string; readonly interval: string };
  /** How the chart is deployed. */
  readonly deploy: {
    readonly mode: DeployMode;
    readonly namespace: string;
    readonly releaseName: string;
    /**
     * The cluster's CoreDNS HelmRelease (helmrelease mode) or Kustomization (kustomization mode);
     * `false` in the stack file when CoreDNS is not deployed by Flux (Talos' own CoreDNS).
     */
    readonly coreDns: ObjectRef | false;
    /** Where Flux finds the manifests (kustomization mode only). */
    readonly git?: { readonly repository: ObjectRef; readonly path: string };
    /** Flux reconcile interval. */
    readonly interval: string;
  };
  /** Mirror settings that become chart values. */
  readonly mirror: {
    readonly imageRepository?: string;
    readonly imageTag?: string;
    readonly imageDigest?: string;
    readonly mirroredRegistries: readonly string[];
    readonly prependExisting: boolean;
    readonly resolveTags: ResolveTags;
    readonly resolveTagsFilter: readonly string[];
    readonly logLevel: LogLevel;
    readonly hostPort: number;
  };
  /** Observability switches. */
  readonly observability: {
    readonly serviceMonitor: boolean;
    readonly serviceMonitorLabels: Readonly<Record<string, string>>;
    readonly grafanaDashboard: GrafanaDashboardMode | false;
    readonly alerts: boolean;
  };
}

/** One problem found in the configuration. */
export interface ConfigIssue {
  /** Full key path, e.g. `peili:talos.nodes[1].address`. */
  readonly key: string;
  /** What is wrong. */
  readonly message: string;
}

/** Thrown when the stack configuration is missing or wrong; names every offending key. */
export class StackConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`invalid stack configuration:\n${issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'StackConfigError';
  }
}

/** Raw access to the stack's configuration (the engine, or a test's map). */
export interface ConfigSource {
  /** The raw string of `peili:<key>`, or undefined. */
  get(key: string): string | undefined;
  /** Whether `peili:<key>` is stored as a secret. */
  isSecret(key: string): boolean;
}

// -- small validators: each records an issue and returns undefined on failure --------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

class Reader {
  readonly issues: ConfigIssue[] = [];

  fail(key: string, message: string): undefined {
    this.issues.push({ key: `${CONFIG_NAMESPACE}:${key}`, message });
    return undefined;
  }

  object(key: string, value: Json | undefined, allowed: readonly string[]): Obj | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return this.fail(key, 'must be an object');
    for (const k of Object.keys(value)) {
      if (!allowed.includes(k)) this.fail(`${key}.${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
    }
    return value;
  }

  string(key: string, value: Json | undefined, pattern?: RegExp, hint?: string): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') return this.fail(key, 'must be a non-empty string');
    if (pattern && !pattern.test(value))
      return this.fail(key, `must be ${hint ?? `like ${pattern}`} (got '${value}')`);
    return value;
  }

  required<T>(key: string, value: T | undefined, present: boolean): T | undefined {
    if (!present) this.fail(key, 'is required');
    return value;
  }

  oneOf<T extends string>(key: string, value: Json | undefined, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      return this.fail(key, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
    }
    return value as T;
  }

  boolean(key: string, value: Json | undefined): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean')
      return this.fail(key, `must be true or false (got ${JSON.stringify(value)})`);
    return value;
  }

  port(key: string, value: Json | undefined): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
      return this.fail(key, `must be a port number 1-65535 (got ${JSON.stringify(value)})`);
    }
    return value;
  }

  strings(key: string, value: Json | undefined, pattern?: RegExp, hint?: string): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.fail(key, 'must be a list of strings');
    const out: string[] = [];
    value.forEach((v, i) => {
      const s = this.string(`${key}[${i}]`, v, pattern, hint);
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  stringMap(key: string, value: Json | undefined): Record<string, string> | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return this.fail(key, 'must be a map of strings');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== 'string') this.fail(`${key}.${k}`, 'must be a string');
      else out[k] = v;
    }
    return out;
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_HINT = 'a DNS label (lower-case letters, digits, -)';
const HOST = /^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]*:[0-9a-fA-F:.]+|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)$/;
const HOST_HINT = 'an IP address or host name';
const SEMVER = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const DURATION = /^(\d+(ms|s|m|h))+$/;
const REGISTRY = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?$/;

function parseJson(source: ConfigSource, key: string): Json | undefined {
  const raw = source.get(key);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Json;
  } catch {
    // Plain strings are stored unquoted by `pulumi config set`; the typed readers judge them.
    return raw;
  }
}

function secretString(r: Reader, source: ConfigSource, key: string): string | undefined {
  const raw = source.get(key);
  if (raw === undefined || raw === '')
    return r.fail(key, `is required (pulumi config set --secret ${key} …)`);
  if (!source.isSecret(key))
    return r.fail(key, `must be stored as a secret (pulumi config set --secret ${key} …)`);
  return raw;
}

function secretObject(r: Reader, source: ConfigSource, key: string): Json | undefined {
  const raw = source.get(key);
  if (raw === undefined)
    return r.fail(key, `is required (pulumi config set --secret ${key} '<JSON>', see docs/deploy-pulumi.md)`);
  if (!source.isSecret(key))
    return r.fail(key, `must be stored as a secret (pulumi config set --secret ${key} …)`);
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return r.fail(key, 'must be a JSON object');
  }
}

function parseClientConfiguration(
  r: Reader,
  key: string,
  value: Json | undefined,
): ClientConfiguration | undefined {
  const fields = ['caCertificate', 'clientCertificate', 'clientKey'] as const;
  const o = r.object(key, value, fields);
  if (!o) return undefined;
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = r.required(`${key}.${f}`, r.string(`${key}.${f}`, o[f]), o[f] !== undefined);
    if (v !== undefined) out[f] = v;
  }
  return out as unknown as ClientConfiguration;
}

function parseMachineSecrets(r: Reader, key: string, value: Json | undefined): MachineSecrets | undefined {
  // Checks the shape the provider expects; the values are opaque base64/PEM strings.
  const shape: Record<string, Record<string, readonly string[]> | readonly string[]> = {
    certs: {
      etcd: ['cert', 'key'],
      k8s: ['cert', 'key'],
      k8sAggregator: ['cert', 'key'],
      k8sServiceaccount: ['key'],
      os: ['cert', 'key'],
    },
    cluster: ['id', 'secret'],
    secrets: ['bootstrapToken', 'secretboxEncryptionSecret'],
    trustdinfo: ['token'],
  };
  const root = r.object(key, value, Object.keys(shape));
  if (!root) return undefined;
  const before = r.issues.length;
  const leaves = (
    k: string,
    v: Json | undefined,
    fields: readonly string[],
    optional: readonly string[] = [],
  ): void => {
    const o = r.object(k, v, [...fields, ...optional]);
    if (!o) {
      if (v === undefined) r.fail(k, 'is required');
      return;
    }
    for (const f of fields) r.required(`${k}.${f}`, r.string(`${k}.${f}`, o[f]), o[f] !== undefined);
  };
  for (const [section, spec] of Object.entries(shape)) {
    const k = `${key}.${section}`;
    if (Array.isArray(spec)) {
      leaves(k, root[section], spec, section === 'secrets' ? ['aescbcEncryptionSecret'] : []);
    } else {
      const o = r.object(k, root[section], Object.keys(spec));
      if (!o) {
        if (root[section] === undefined) r.fail(k, 'is required');
        continue;
      }
      for (const [sub, fields] of Object.entries(spec as Record<string, readonly string[]>))
        leaves(`${k}.${sub}`, o[sub], fields);
    }
  }
  return r.issues.length === before ? (root as unknown as MachineSecrets) : undefined;
}

/** Parses and validates the stack configuration; throws `StackConfigError` naming every bad key. */
export function parseStackConfig(source: ConfigSource): StackConfig {
  const r = new Reader();
  const clusterName = r.required(
    'clusterName',
    r.string('clusterName', parseJson(source, 'clusterName'), DNS_LABEL, DNS_LABEL_HINT),
    source.get('clusterName') !== undefined,
  );
  const kubeconfig = secretString(r, source, 'kubeconfig');

  // -- talos
  const talosRaw = r.object('talos', parseJson(source, 'talos'), [
    'enabled',
    'clusterEndpoint',
    'talosVersion',
    'kubernetesVersion',
    'applyMode',
    'configPatches',
    'nodes',
  ]);
  if (source.get('talos') === undefined)
    r.fail(
      'talos',
      'is required (set talos.enabled: false for a cluster whose nodes are prepared otherwise)',
    );
  let talos: TalosConfig | undefined;
  if (talosRaw && (r.boolean('talos.enabled', talosRaw.enabled) ?? true)) {
    const clusterEndpoint = r.required(
      'talos.clusterEndpoint',
      r.string(
        'talos.clusterEndpoint',
        talosRaw.clusterEndpoint,
        /^https:\/\/[^/\s]+(:\d+)?\/?$/,
        'an https:// URL of the Kubernetes API',
      ),
      talosRaw.clusterEndpoint !== undefined,
    );
    const talosVersion = r.required(
      'talos.talosVersion',
      r.string(
        'talos.talosVersion',
        talosRaw.talosVersion,
        /^v?\d+\.\d+(\.\d+)?$/,
        'a Talos version such as v1.11',
      ),
      talosRaw.talosVersion !== undefined,
    );
    const kubernetesVersion = r.string(
      'talos.kubernetesVersion',
      talosRaw.kubernetesVersion,
      /^v?\d+\.\d+\.\d+$/,
      'a Kubernetes version such as 1.34.1',
    );
    const applyMode =
      r.oneOf('talos.applyMode', talosRaw.applyMode, APPLY_MODES) ?? 'staged_if_needing_reboot';
    const configPatches = r.strings('talos.configPatches', talosRaw.configPatches) ?? [];
    const nodes: TalosNode[] = [];
    if (talosRaw.nodes === undefined) r.fail('talos.nodes', 'is required');
    else if (!Array.isArray(talosRaw.nodes) || talosRaw.nodes.length === 0)
      r.fail('talos.nodes', 'must be a non-empty list of nodes');
    else {
      talosRaw.nodes.forEach((n, i) => {
        const k = `talos.nodes[${i}]`;
        const o = r.object(k, n, ['name', 'address', 'endpoint', 'machineType', 'configPatches']);
        if (!o) return;
        const name = r.required(
          `${k}.name`,
          r.string(`${k}.name`, o.name, DNS_LABEL, DNS_LABEL_HINT),
          o.name !== undefined,
        );
        const address = r.required(
          `${k}.address`,
          r.string(`${k}.address`, o.address, HOST, HOST_HINT),
          o.address !== undefined,
        );
        const endpoint = r.string(`${k}.endpoint`, o.endpoint, HOST, HOST_HINT);
        const machineType = r.required(
          `${k}.machineType`,
          r.oneOf(`${k}.machineType`, o.machineType, ['controlplane', 'worker'] as const),
          o.machineType !== undefined,
        );
        const patches = r.strings(`${k}.configPatches`, o.configPatches) ?? [];
        if (name && nodes.some((x) => x.name === name)) r.fail(`${k}.name`, `duplicate node name '${name}'`);
        if (name && address && machineType)
          nodes.push({ name, address, endpoint: endpoint ?? address, machineType, configPatches: patches });
      });
    }
    const clientConfiguration = parseClientConfiguration(
      r,
      'talosClientConfiguration',
      secretObject(r, source, 'talosClientConfiguration'),
    );
    const machineSecrets = parseMachineSecrets(
      r,
      'talosMachineSecrets',
      secretObject(r, source, 'talosMachineSecrets'),
    );
    if (clusterEndpoint && talosVersion && clientConfiguration && machineSecrets) {
      talos = {
        clusterEndpoint,
        talosVersion,
        ...(kubernetesVersion ? { kubernetesVersion } : {}),
        applyMode,
        configPatches,
        nodes,
        clientConfiguration: pulumi.secret(clientConfiguration),
        machineSecrets: pulumi.secret(machineSecrets),
      };
    }
  }

  // -- chart
  const chartRaw = r.object('chart', parseJson(source, 'chart'), ['url', 'version', 'interval']) ?? {};
  const chart = {
    url:
      r.string('chart.url', chartRaw.url, /^oci:\/\/[^\s]+[^/]$/, 'an oci:// chart URL without tag') ??
      'oci://ghcr.io/peili-dev/charts/peili',
    version:
      r.required(
        'chart.version',
        r.string('chart.version', chartRaw.version, SEMVER, 'a semantic version such as 0.1.0'),
        chartRaw.version !== undefined,
      ) ?? '',
    interval: r.string('chart.interval', chartRaw.interval, DURATION, 'a duration such as 10m') ?? '10m',
  };

  // -- deploy
  const deployRaw =
    r.object('deploy', parseJson(source, 'deploy'), [
      'mode',
      'namespace',
      'releaseName',
      'coreDns',
      'git',
      'interval',
    ]) ?? {};
  const mode =
    r.oneOf('deploy.mode', deployRaw.mode, ['helmrelease', 'kustomization', 'bootstrap'] as const) ??
    'helmrelease';
  const ref = (k: string, v: Json | undefined, defaults: ObjectRef): ObjectRef => {
    const o = r.object(k, v, ['name', 'namespace']) ?? {};
    return {
      name: r.string(`${k}.name`, o.name, DNS_LABEL, DNS_LABEL_HINT) ?? defaults.name,
      namespace: r.string(`${k}.namespace`, o.namespace, DNS_LABEL, DNS_LABEL_HINT) ?? defaults.namespace,
    };
  };
  let git: StackConfig['deploy']['git'];
  if (mode === 'kustomization') {
    const gitRaw = r.object('deploy.git', deployRaw.git, ['repository', 'path']);
    if (!gitRaw) r.fail('deploy.git', "is required when deploy.mode is 'kustomization'");
    else {
      const path = r.required(
        'deploy.git.path',
        r.string('deploy.git.path', gitRaw.path, /^\.?\/?[^\s]*$/, 'a path in the repository'),
        gitRaw.path !== undefined,
      );
      if (gitRaw.repository === undefined) r.fail('deploy.git.repository', 'is required');
      const repository = ref('deploy.git.repository', gitRaw.repository, {
        name: 'flux-system',
        namespace: 'flux-system',
      });
      if (path) git = { repository, path };
    }
  } else if (deployRaw.git !== undefined) {
    r.fail('deploy.git', "is only used when deploy.mode is 'kustomization'");
  }
  const deploy = {
    mode,
    namespace: r.string('deploy.namespace', deployRaw.namespace, DNS_LABEL, DNS_LABEL_HINT) ?? 'peili',
    releaseName: r.string('deploy.releaseName', deployRaw.releaseName, DNS_LABEL, DNS_LABEL_HINT) ?? 'peili',
    coreDns:
      deployRaw.coreDns === false
        ? (false as const)
        : ref('deploy.coreDns', deployRaw.coreDns, {
            name: 'coredns',
            namespace: mode === 'kustomization' ? 'flux-system' : 'kube-system',
          }),
    ...(git ? { git } : {}),
    interval: r.string('deploy.interval', deployRaw.interval, DURATION, 'a duration such as 10m') ?? '10m',
  };

  // -- mirror
  const mirrorRaw =
    r.object('mirror', parseJson(source, 'mirror'), [
      'imageRepository',
      'imageTag',
      'imageDigest',
      'mirroredRegistries',
      'prependExisting',
      'resolveTags',
      'resolveTagsFilter',
      'logLevel',
      'hostPort',
    ]) ?? {};
  if (mirrorRaw.mirroredRegistries === undefined)
    r.fail('mirror.mirroredRegistries', 'is required (a list of registry hosts; [] mirrors every registry)');
  const filters = r.strings('mirror.resolveTagsFilter', mirrorRaw.resolveTagsFilter) ?? [];
  filters.forEach((f, i) => {
    try {
      new RegExp(f);
    } catch {
      r.fail(`mirror.resolveTagsFilter[${i}]`, `is not a valid regular expression ('${f}')`);
    }
  });
  const imageRepository = r.string(
    'mirror.imageRepository',
    mirrorRaw.imageRepository,
    /^[a-z0-9.:/_-]+$/,
    'an image repository',
  );
  const imageTag = r.string('mirror.imageTag', mirrorRaw.imageTag, /^[\w][\w.-]{0,127}$/, 'an image tag');
  const imageDigest = r.string(
    'mirror.imageDigest',
    mirrorRaw.imageDigest,
    /^sha256:[a-f0-9]{64}$/,
    'sha256:<64 hex>',
  );
  const mirror = {
    ...(imageRepository ? { imageRepository } : {}),
    ...(imageTag ? { imageTag } : {}),
    ...(imageDigest ? { imageDigest } : {}),
    mirroredRegistries:
      r.strings(
        'mirror.mirroredRegistries',
        mirrorRaw.mirroredRegistries,
        REGISTRY,
        'a registry host such as docker.io',
      ) ?? [],
    prependExisting: r.boolean('mirror.prependExisting', mirrorRaw.prependExisting) ?? false,
    resolveTags:
      r.oneOf('mirror.resolveTags', mirrorRaw.resolveTags, ['upstream-down', 'always', 'never'] as const) ??
      'upstream-down',
    resolveTagsFilter: filters,
    logLevel:
      r.oneOf('mirror.logLevel', mirrorRaw.logLevel, [
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
      ] as const) ?? 'info',
    hostPort: r.port('mirror.hostPort', mirrorRaw.hostPort) ?? 29999,
  };

  // -- observability
  const obsRaw =
    r.object('observability', parseJson(source, 'observability'), [
      'serviceMonitor',
      'serviceMonitorLabels',
      'grafanaDashboard',
      'alerts',
    ]) ?? {};
  const dashboard =
    r.oneOf('observability.grafanaDashboard', obsRaw.grafanaDashboard, [
      'off',
      'configmap',
      'operator',
    ] as const) ?? 'off';
  const observability = {
    serviceMonitor: r.boolean('observability.serviceMonitor', obsRaw.serviceMonitor) ?? false,
    serviceMonitorLabels:
      r.stringMap('observability.serviceMonitorLabels', obsRaw.serviceMonitorLabels) ?? {},
    grafanaDashboard: dashboard === 'off' ? (false as const) : dashboard,
    alerts: r.boolean('observability.alerts', obsRaw.alerts) ?? false,
  };
  if (observability.alerts && !observability.serviceMonitor) {
    r.fail(
      'observability.alerts',
      'needs observability.serviceMonitor: true (the alerts use the scraped metrics)',
    );
  }

  if (r.issues.length > 0 || clusterName === undefined || kubeconfig === undefined)
    throw new StackConfigError(r.issues);
  return Object.freeze({
    clusterName,
    kubeconfig: pulumi.secret(kubeconfig),
    ...(talos ? { talos } : {}),
    chart,
    deploy,
    mirror,
    observability,
  });
}

/** Reads the running stack's configuration through the Pulumi runtime. */
export function engineConfigSource(): ConfigSource {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  // `isConfigSecret` is exported by the runtime but not declared in its typings.
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  return {
    get: (key) => config.get(key),
    isSecret: (key) => runtime.isConfigSecret?.(`${CONFIG_NAMESPACE}:${key}`) ?? true,
  };
}

/** Loads and validates the running stack's configuration. */
export function loadStackConfig(): StackConfig {
  return parseStackConfig(engineConfigSource());
}
