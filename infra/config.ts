// The only reader of the stack configuration. `parseStackConfig` is pure: it takes the raw config
// strings (and which keys are secrets) and returns a frozen, typed config, or throws one
// `StackConfigError` listing every problem with the key it belongs to, before any resource exists.
// Chart settings are not re-modelled here: `peili:values` is judged by the chart's own
// values.schema.json (chart-values.ts).
import * as pulumi from '@pulumi/pulumi';
import { validateChartValues, type ChartValues } from './chart-values.js';
import { STACK_OWNED_VALUES, chartValue } from './mirror-values.js';
import { parseTalosVersion } from './talos-patch.js';
import type { ClientConfiguration, MachineSecrets, MachineType } from './talos/types.js';

/** The Pulumi config namespace of every key (the project name). */
export const CONFIG_NAMESPACE = 'peili';

/** How the chart reaches the cluster. */
export type DeployMode = 'helmrelease' | 'kustomization' | 'bootstrap';

/** Who owns the nodes' Talos configuration. */
export type TalosManagement = 'pulumi' | 'external';

/**
 * How the keep-layers part reaches nodes that need a reboot for it (Talos before 1.14):
 * `staged` until the node's next reboot; `rolling-reboot` one node at a time; `applied` when
 * every node already runs it (after their reboots), so every later change applies without one.
 */
export type KeepLayersRollout = 'staged' | 'rolling-reboot' | 'applied';

/** A Talos node. */
export interface TalosNode {
  /** The node's Kubernetes node name (health and the rolling reboot find its daemon by it). */
  readonly name: string;
  /** Node address (IP or hostname) as the Talos API knows it. */
  readonly address: string;
  /** Talos API endpoint used to reach it. @default address */
  readonly endpoint: string;
  /** Machine type its configuration was generated for. */
  readonly machineType: MachineType;
  /** Install disk, when it differs from the cluster's. @default talos.installDisk */
  readonly installDisk?: string;
  /** The node's own patches, exactly those it was configured with. @default [] */
  readonly configPatches: readonly string[];
}

/** What a Pulumi-owned Talos configuration is generated from: all of it from the stack config. */
export interface TalosGeneration {
  /** Kubernetes API endpoint the machine configs were generated with. */
  readonly clusterEndpoint: string;
  /** Kubernetes version the nodes run (no default: the provider's would roll nodes back). */
  readonly kubernetesVersion: string;
  /** Installer image the nodes run, e.g. `ghcr.io/siderolabs/installer:v1.11.6`. */
  readonly installImage: string;
  /** Install disk of the nodes, e.g. `/dev/nvme0n1`. */
  readonly installDisk: string;
  /** Cluster-wide patches the machine configs were generated with. @default [] */
  readonly configPatches: readonly string[];
  /** Talos API client credentials (secret). */
  readonly clientConfiguration: pulumi.Output<ClientConfiguration>;
  /** The cluster's machine secrets bundle (secret). */
  readonly machineSecrets: pulumi.Output<MachineSecrets>;
}

/** Talos settings of a stack. */
export interface TalosConfig {
  /** `pulumi`: the stack applies Peili's parts; `external`: it only outputs them. @default 'pulumi' */
  readonly management: TalosManagement;
  /** Talos version the nodes run, e.g. `v1.11.6` (chooses the documents; no default). */
  readonly talosVersion: string;
  /** Mirror endpoint written into Talos's registry config. @default http://127.0.0.1:<hostPort> */
  readonly mirrorEndpoint?: string;
  /** Rollout of the keep-layers part where it needs a reboot. @default 'staged' */
  readonly keepLayers: KeepLayersRollout;
  /** How long the rolling reboot waits for each node. @default '20m' */
  readonly rebootTimeout: string;
  /** The nodes (required when `management` is `pulumi`). @default [] */
  readonly nodes: readonly TalosNode[];
  /** Generation inputs; present exactly when `management` is `pulumi`. */
  readonly generation?: TalosGeneration;
}

/** A namespaced object reference. */
export interface ObjectRef {
  readonly name: string;
  readonly namespace: string;
}

/** Where Flux pulls the chart from, and how it checks it. */
export interface ChartSource {
  readonly url: string;
  readonly version: string;
  readonly interval: string;
  /** Secret (docker-registry type) with credentials for the chart registry. @default none */
  readonly secretRef?: string;
  /** Cosign verification of the chart artifact. @default none */
  readonly verify?: {
    /** Secret holding the cosign public key(s); keyless (OIDC) verification when absent. */
    readonly secretRef?: string;
    /** Keyless: the OIDC issuer and subject regexes the signature must match. */
    readonly matchOIDCIdentity?: readonly { readonly issuer: string; readonly subject: string }[];
  };
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
  readonly chart: ChartSource;
  /** How the chart is deployed. */
  readonly deploy: {
    readonly mode: DeployMode;
    readonly namespace: string;
    readonly releaseName: string;
    /**
     * The Flux CoreDNS HelmRelease (helmrelease mode) or Kustomization (kustomization mode) to wait
     * for; `false` unless named: Talos deploys its own CoreDNS, which is no Flux object, and
     * waiting for one that does not exist hangs forever.
     */
    readonly coreDns: ObjectRef | false;
    /** Where Flux finds the manifests (kustomization mode only). */
    readonly git?: { readonly repository: ObjectRef; readonly path: string };
    /** Flux reconcile interval. */
    readonly interval: string;
  };
  /** The chart values the user set (validated by the chart's values.schema.json). */
  readonly values: ChartValues;
  /** Observability the stack itself creates. */
  readonly observability: {
    readonly alerts: boolean;
    readonly alertLabels: Readonly<Record<string, string>>;
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
// A Kubernetes node name: a DNS subdomain.
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const NODE_NAME_HINT = 'the Kubernetes node name (lower-case letters, digits, - and .)';

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

function parseTalos(r: Reader, source: ConfigSource): TalosConfig | undefined {
  const talosRaw = r.object('talos', parseJson(source, 'talos'), [
    'enabled',
    'management',
    'talosVersion',
    'mirrorEndpoint',
    'keepLayers',
    'rebootTimeout',
    'clusterEndpoint',
    'kubernetesVersion',
    'installImage',
    'installDisk',
    'configPatches',
    'nodes',
  ]);
  if (source.get('talos') === undefined)
    r.fail(
      'talos',
      'is required (set talos.enabled: false for a cluster whose nodes are prepared otherwise)',
    );
  if (!talosRaw || !(r.boolean('talos.enabled', talosRaw.enabled) ?? true)) return undefined;
  const management =
    r.oneOf('talos.management', talosRaw.management, ['pulumi', 'external'] as const) ?? 'pulumi';
  const owned = management === 'pulumi';
  const talosVersion = r.required(
    'talos.talosVersion',
    r.string(
      'talos.talosVersion',
      talosRaw.talosVersion,
      /^v?\d+\.\d+(\.\d+)?$/,
      'the Talos version the nodes run, such as v1.11.6',
    ),
    talosRaw.talosVersion !== undefined,
  );
  const version = talosVersion ? parseTalosVersion(talosVersion) : undefined;
  if (version && (version.major !== 1 || version.minor < 8))
    r.fail('talos.talosVersion', `must be 1.8 or later (containerd 2; got '${talosVersion}')`);
  const mirrorEndpoint = r.string(
    'talos.mirrorEndpoint',
    talosRaw.mirrorEndpoint,
    /^https?:\/\/[^/\s]+\/?$/,
    'an http(s):// URL without path',
  );
  const keepLayers =
    r.oneOf('talos.keepLayers', talosRaw.keepLayers, ['staged', 'rolling-reboot', 'applied'] as const) ??
    'staged';
  const rebootTimeout =
    r.string('talos.rebootTimeout', talosRaw.rebootTimeout, DURATION, 'a duration such as 20m') ?? '20m';
  // Only what is needed in Pulumi-owned mode is required; in external mode it must be absent,
  // so nobody believes it is applied.
  const requiredIfOwned = <T>(key: string, value: T | undefined, raw: Json | undefined): T | undefined => {
    if (!owned) {
      if (raw !== undefined) r.fail(`talos.${key}`, "is only used when talos.management is 'pulumi'");
      return undefined;
    }
    return r.required(`talos.${key}`, value, raw !== undefined);
  };
  const clusterEndpoint = requiredIfOwned(
    'clusterEndpoint',
    r.string(
      'talos.clusterEndpoint',
      talosRaw.clusterEndpoint,
      /^https:\/\/[^/\s]+(:\d+)?\/?$/,
      'an https:// URL of the Kubernetes API',
    ),
    talosRaw.clusterEndpoint,
  );
  const kubernetesVersion = requiredIfOwned(
    'kubernetesVersion',
    r.string(
      'talos.kubernetesVersion',
      talosRaw.kubernetesVersion,
      /^v?\d+\.\d+\.\d+$/,
      'the Kubernetes version the nodes run, such as 1.34.1',
    ),
    talosRaw.kubernetesVersion,
  );
  const installImage = requiredIfOwned(
    'installImage',
    r.string('talos.installImage', talosRaw.installImage, /^\S+$/, 'an installer image reference'),
    talosRaw.installImage,
  );
  const installDisk = requiredIfOwned(
    'installDisk',
    r.string('talos.installDisk', talosRaw.installDisk, /^\/dev\/\S+$/, 'a device path such as /dev/sda'),
    talosRaw.installDisk,
  );
  const configPatches = r.strings('talos.configPatches', talosRaw.configPatches) ?? [];
  if (!owned && talosRaw.configPatches !== undefined)
    r.fail('talos.configPatches', "is only used when talos.management is 'pulumi'");
  const checkOwnPart = (key: string, patches: readonly string[]): void => {
    patches.forEach((p, i) => {
      // Two `create`s of the same machine file are refused by Talos: merge yours into one.
      if (p.includes('20-customization.part') && keepLayers !== 'applied')
        r.fail(
          `${key}[${i}]`,
          "already writes /etc/cri/conf.d/20-customization.part: add 'discard_unpacked_layers = false' under [plugins.\"io.containerd.cri.v1.images\"] to it and remove it from Peili's side with talos.management: external",
        );
    });
  };
  checkOwnPart('talos.configPatches', configPatches);

  const nodes: TalosNode[] = [];
  if (talosRaw.nodes === undefined) {
    if (owned) r.fail('talos.nodes', 'is required');
  } else if (!Array.isArray(talosRaw.nodes) || (owned && talosRaw.nodes.length === 0))
    r.fail('talos.nodes', 'must be a non-empty list of nodes');
  else {
    talosRaw.nodes.forEach((n, i) => {
      const k = `talos.nodes[${i}]`;
      const o = r.object(k, n, [
        'name',
        'address',
        'endpoint',
        'machineType',
        'installDisk',
        'configPatches',
      ]);
      if (!o) return;
      const name = r.required(
        `${k}.name`,
        r.string(`${k}.name`, o.name, NODE_NAME, NODE_NAME_HINT),
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
      const disk = r.string(
        `${k}.installDisk`,
        o.installDisk,
        /^\/dev\/\S+$/,
        'a device path such as /dev/sda',
      );
      const patches = r.strings(`${k}.configPatches`, o.configPatches) ?? [];
      checkOwnPart(`${k}.configPatches`, patches);
      if (name && nodes.some((x) => x.name === name)) r.fail(`${k}.name`, `duplicate node name '${name}'`);
      if (name && address && machineType)
        nodes.push({
          name,
          address,
          endpoint: endpoint ?? address,
          machineType,
          ...(disk ? { installDisk: disk } : {}),
          configPatches: patches,
        });
    });
  }
  let generation: TalosGeneration | undefined;
  if (owned) {
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
    if (
      clusterEndpoint &&
      kubernetesVersion &&
      installImage &&
      installDisk &&
      clientConfiguration &&
      machineSecrets
    )
      generation = {
        clusterEndpoint,
        kubernetesVersion,
        installImage,
        installDisk,
        configPatches,
        clientConfiguration: pulumi.secret(clientConfiguration),
        machineSecrets: pulumi.secret(machineSecrets),
      };
  }
  if (!talosVersion || (owned && !generation)) return undefined;
  return {
    management,
    talosVersion,
    ...(mirrorEndpoint ? { mirrorEndpoint: mirrorEndpoint.replace(/\/$/, '') } : {}),
    keepLayers,
    rebootTimeout,
    nodes,
    ...(generation ? { generation } : {}),
  };
}

function parseChart(r: Reader, source: ConfigSource): ChartSource {
  const raw =
    r.object('chart', parseJson(source, 'chart'), ['url', 'version', 'interval', 'secretRef', 'verify']) ??
    {};
  const secretRef = r.string('chart.secretRef', raw.secretRef, DNS_LABEL, DNS_LABEL_HINT);
  let verify: ChartSource['verify'];
  const v = r.object('chart.verify', raw.verify, ['secretRef', 'matchOIDCIdentity']);
  if (v) {
    const vSecret = r.string('chart.verify.secretRef', v.secretRef, DNS_LABEL, DNS_LABEL_HINT);
    const ids: { issuer: string; subject: string }[] = [];
    if (v.matchOIDCIdentity !== undefined) {
      if (!Array.isArray(v.matchOIDCIdentity)) r.fail('chart.verify.matchOIDCIdentity', 'must be a list');
      else
        v.matchOIDCIdentity.forEach((m, i) => {
          const k = `chart.verify.matchOIDCIdentity[${i}]`;
          const o = r.object(k, m, ['issuer', 'subject']);
          if (!o) return;
          const issuer = r.required(`${k}.issuer`, r.string(`${k}.issuer`, o.issuer), o.issuer !== undefined);
          const subject = r.required(
            `${k}.subject`,
            r.string(`${k}.subject`, o.subject),
            o.subject !== undefined,
          );
          if (issuer && subject) ids.push({ issuer, subject });
        });
    }
    if (!vSecret && ids.length === 0)
      r.fail('chart.verify', 'needs secretRef (a cosign public key) or matchOIDCIdentity (keyless)');
    verify = {
      ...(vSecret ? { secretRef: vSecret } : {}),
      ...(ids.length ? { matchOIDCIdentity: ids } : {}),
    };
  }
  return {
    url:
      r.string('chart.url', raw.url, /^oci:\/\/[^\s]+[^/]$/, 'an oci:// chart URL without tag') ??
      'oci://ghcr.io/peili-dev/charts/peili',
    version:
      r.required(
        'chart.version',
        r.string('chart.version', raw.version, SEMVER, 'a semantic version such as 0.1.0'),
        raw.version !== undefined,
      ) ?? '',
    interval: r.string('chart.interval', raw.interval, DURATION, 'a duration such as 10m') ?? '10m',
    ...(secretRef ? { secretRef } : {}),
    ...(verify ? { verify } : {}),
  };
}

function parseValues(r: Reader, source: ConfigSource): ChartValues {
  const raw = parseJson(source, 'values');
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    r.fail('values', 'must be an object of chart values (mirror/chart/values.yaml)');
    return {};
  }
  const values = raw as ChartValues;
  for (const key of STACK_OWNED_VALUES) {
    if (chartValueSet(values, key))
      r.fail(`values.${key}`, 'is set by the stack (deploy.releaseName, talos.*); remove it here');
  }
  for (const issue of validateChartValues(values))
    r.fail(issue.path ? `values.${issue.path}` : 'values', issue.message);
  return values;
}

function chartValueSet(values: ChartValues, path: string): boolean {
  let v: Json | undefined = values as Json;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
    v = v[part];
  }
  return v !== undefined;
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
  const talos = parseTalos(r, source);
  const chart = parseChart(r, source);

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
  const ref = (k: string, v: Json | undefined): ObjectRef | undefined => {
    const o = r.object(k, v, ['name', 'namespace']);
    if (!o) return undefined;
    const name = r.required(
      `${k}.name`,
      r.string(`${k}.name`, o.name, DNS_LABEL, DNS_LABEL_HINT),
      o.name !== undefined,
    );
    // Flux's own objects live in flux-system unless told otherwise.
    const namespace = r.string(`${k}.namespace`, o.namespace, DNS_LABEL, DNS_LABEL_HINT) ?? 'flux-system';
    return name && namespace ? { name, namespace } : undefined;
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
      const repository = ref('deploy.git.repository', gitRaw.repository);
      if (path && repository) git = { repository, path };
    }
  } else if (deployRaw.git !== undefined) {
    r.fail('deploy.git', "is only used when deploy.mode is 'kustomization'");
  }
  const coreDns = deployRaw.coreDns === false ? undefined : ref('deploy.coreDns', deployRaw.coreDns);
  if (coreDns && mode === 'bootstrap')
    r.fail('deploy.coreDns', "is a Flux dependency: not used when deploy.mode is 'bootstrap'");
  const deploy = {
    mode,
    namespace: r.string('deploy.namespace', deployRaw.namespace, DNS_LABEL, DNS_LABEL_HINT) ?? 'peili',
    releaseName: r.string('deploy.releaseName', deployRaw.releaseName, DNS_LABEL, DNS_LABEL_HINT) ?? 'peili',
    coreDns: coreDns ?? (false as const),
    ...(git ? { git } : {}),
    interval: r.string('deploy.interval', deployRaw.interval, DURATION, 'a duration such as 10m') ?? '10m',
  };

  const values = parseValues(r, source);

  // -- observability
  const obsRaw =
    r.object('observability', parseJson(source, 'observability'), ['alerts', 'alertLabels']) ?? {};
  const observability = {
    alerts: r.boolean('observability.alerts', obsRaw.alerts) ?? false,
    alertLabels: r.stringMap('observability.alertLabels', obsRaw.alertLabels) ?? {},
  };
  if (observability.alerts && chartValue(values, 'serviceMonitor.enabled') !== true) {
    r.fail(
      'observability.alerts',
      'needs values.serviceMonitor.enabled: true (the alerts use the scraped metrics)',
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
    values,
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
