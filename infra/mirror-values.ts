// The one typed source of the chart's values. The Flux HelmRelease and the bootstrap Helm release
// both take their values from `buildMirrorValues`, so the two paths can never drift apart and
// Flux can adopt a bootstrapped release without a redeploy. Keys follow the chart contract
// (mirror/chart/values.yaml); anything not set here keeps the chart's own default.

/** When the mirror answers tag (manifest-by-tag) requests itself. */
export type ResolveTags = 'upstream-down' | 'always' | 'never';

/** Log levels the daemon accepts (`--log-level`). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** How the Grafana dashboard is shipped: a sidecar-discovered ConfigMap or a grafana-operator CR. */
export type GrafanaDashboardMode = 'configmap' | 'operator';

/** A Kubernetes toleration, as the chart passes it through. */
export interface Toleration {
  readonly key?: string;
  readonly operator?: 'Exists' | 'Equal';
  readonly value?: string;
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  readonly tolerationSeconds?: number;
}

/** A Prometheus relabeling rule, passed through to the ServiceMonitor endpoint. */
export interface Relabeling {
  readonly sourceLabels?: readonly string[];
  readonly separator?: string;
  readonly targetLabel?: string;
  readonly regex?: string;
  readonly modulus?: number;
  readonly replacement?: string;
  readonly action?: string;
}

/** The chart's values, exactly the keys of the chart contract. */
export interface MirrorValues {
  readonly image: {
    readonly repository: string;
    readonly tag: string;
    readonly digest: string;
    readonly pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  };
  readonly imagePullSecrets: readonly { readonly name: string }[];
  readonly fullnameOverride: string;
  readonly priorityClassName: string;
  readonly resources: {
    readonly requests: { readonly cpu: string; readonly memory: string };
    readonly limits: { readonly memory: string };
  };
  readonly tolerations: readonly Toleration[];
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly affinity: Readonly<Record<string, unknown>>;
  readonly podAnnotations: Readonly<Record<string, string>>;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly updateStrategy: {
    readonly type: 'RollingUpdate' | 'OnDelete';
    readonly rollingUpdate?: { readonly maxUnavailable: string | number };
  };
  readonly peili: {
    readonly containerdSock: string;
    readonly containerdNamespace: string;
    readonly containerdContentPath: string;
    readonly containerdRegistryConfigPath: string;
    readonly mirroredRegistries: readonly string[];
    readonly prependExisting: boolean;
    readonly resolveTags: ResolveTags;
    readonly resolveTagsFilter: readonly string[];
    readonly lookupTimeout: string;
    readonly logLevel: LogLevel;
    readonly membersRefresh: string;
    readonly dialTimeout: string;
  };
  readonly service: {
    readonly registry: { readonly port: number; readonly hostPort: number };
    readonly router: { readonly port: number };
    readonly metrics: { readonly port: number };
  };
  readonly serviceMonitor: {
    readonly enabled: boolean;
    readonly interval: string;
    readonly scrapeTimeout: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly relabelings: readonly Relabeling[];
  };
  readonly grafanaDashboard: {
    readonly enabled: boolean;
    readonly mode: GrafanaDashboardMode;
    readonly labels: Readonly<Record<string, string>>;
    readonly folder: string;
  };
}

/** containerd's registry config path on Talos (Talos sets `config_path` there). */
export const TALOS_REGISTRY_CONFIG_PATH = '/etc/cri/conf.d/hosts';

/** The conventional hostPort of the node-local registry endpoint. */
export const DEFAULT_HOST_PORT = 29999;

/** The chart defaults (chart contract), before Talos and stack settings are applied. */
export const CHART_DEFAULTS: MirrorValues = {
  image: { repository: 'ghcr.io/peili-dev/peili', tag: '', digest: '', pullPolicy: 'IfNotPresent' },
  imagePullSecrets: [],
  fullnameOverride: '',
  priorityClassName: 'system-node-critical',
  resources: { requests: { cpu: '50m', memory: '160Mi' }, limits: { memory: '160Mi' } },
  tolerations: [{ operator: 'Exists' }],
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  affinity: {},
  podAnnotations: {},
  podLabels: {},
  updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
  peili: {
    containerdSock: '/run/containerd/containerd.sock',
    containerdNamespace: 'k8s.io',
    containerdContentPath: '/var/lib/containerd/io.containerd.content.v1.content',
    containerdRegistryConfigPath: '/etc/containerd/certs.d',
    mirroredRegistries: [],
    prependExisting: false,
    resolveTags: 'upstream-down',
    resolveTagsFilter: [],
    lookupTimeout: '20ms',
    logLevel: 'info',
    membersRefresh: '5s',
    dialTimeout: '200ms',
  },
  service: {
    registry: { port: 5000, hostPort: DEFAULT_HOST_PORT },
    router: { port: 5001 },
    metrics: { port: 9090 },
  },
  serviceMonitor: { enabled: false, interval: '30s', scrapeTimeout: '10s', labels: {}, relabelings: [] },
  grafanaDashboard: {
    enabled: false,
    mode: 'configmap',
    labels: { grafana_dashboard: '1' },
    folder: 'Peili',
  },
};

/** What a stack decides about the mirror; everything else keeps the chart default. */
export interface MirrorSettings {
  /** Helm release name; also forced as `fullnameOverride` so the DaemonSet name is known. */
  readonly releaseName: string;
  /** Image repository. @default 'ghcr.io/peili-dev/peili' */
  readonly imageRepository?: string;
  /** Image tag; empty means the chart's appVersion. @default '' */
  readonly imageTag?: string;
  /** Image digest (`sha256:…`); wins over the tag when set. @default '' */
  readonly imageDigest?: string;
  /** Registries to mirror; empty mirrors all (`_default`). @default [] */
  readonly mirroredRegistries?: readonly string[];
  /** Keep the node's existing hosts.toml hosts after the mirror. @default false */
  readonly prependExisting?: boolean;
  /** Tag resolution policy. @default 'upstream-down' */
  readonly resolveTags?: ResolveTags;
  /** Regexes of `registry/repository:tag` never resolved by the mirror. @default [] */
  readonly resolveTagsFilter?: readonly string[];
  /** Daemon log level. @default 'info' */
  readonly logLevel?: LogLevel;
  /** hostPort of the node-local registry endpoint. @default 29999 */
  readonly hostPort?: number;
  /** containerd registry config path on the nodes. @default TALOS_REGISTRY_CONFIG_PATH */
  readonly registryConfigPath?: string;
  /** Create a ServiceMonitor. @default false */
  readonly serviceMonitor?: boolean;
  /** Labels the Prometheus operator selects ServiceMonitors by. @default {} */
  readonly serviceMonitorLabels?: Readonly<Record<string, string>>;
  /** Ship the Grafana dashboard, and how; `false` ships none. @default false */
  readonly grafanaDashboard?: GrafanaDashboardMode | false;
}

/** Builds the chart values for a Talos cluster from the stack's mirror settings. */
export function buildMirrorValues(settings: MirrorSettings): MirrorValues {
  const d = CHART_DEFAULTS;
  const dashboard = settings.grafanaDashboard ?? false;
  return {
    ...d,
    image: {
      ...d.image,
      repository: settings.imageRepository ?? d.image.repository,
      tag: settings.imageTag ?? d.image.tag,
      digest: settings.imageDigest ?? d.image.digest,
    },
    fullnameOverride: settings.releaseName,
    peili: {
      ...d.peili,
      containerdRegistryConfigPath: settings.registryConfigPath ?? TALOS_REGISTRY_CONFIG_PATH,
      mirroredRegistries: [...(settings.mirroredRegistries ?? d.peili.mirroredRegistries)],
      prependExisting: settings.prependExisting ?? d.peili.prependExisting,
      resolveTags: settings.resolveTags ?? d.peili.resolveTags,
      resolveTagsFilter: [...(settings.resolveTagsFilter ?? d.peili.resolveTagsFilter)],
      logLevel: settings.logLevel ?? d.peili.logLevel,
    },
    service: {
      ...d.service,
      registry: { ...d.service.registry, hostPort: settings.hostPort ?? d.service.registry.hostPort },
    },
    serviceMonitor: {
      ...d.serviceMonitor,
      enabled: settings.serviceMonitor ?? d.serviceMonitor.enabled,
      labels: { ...(settings.serviceMonitorLabels ?? d.serviceMonitor.labels) },
    },
    grafanaDashboard: {
      ...d.grafanaDashboard,
      enabled: dashboard !== false,
      mode: dashboard === false ? d.grafanaDashboard.mode : dashboard,
    },
  };
}

/** The endpoint containerd on a node is pointed at (the init container writes it into hosts.toml). */
export function nodeRegistryEndpoint(nodeAddress: string, hostPort: number): string {
  const host = nodeAddress.includes(':') ? `[${nodeAddress}]` : nodeAddress;
  return `http://${host}:${hostPort}`;
}
