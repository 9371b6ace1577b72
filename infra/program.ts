// The composition root: validated config -> one Kubernetes provider -> the components -> the
// stack outputs. Stacks differ by configuration only.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import type { ChartValues } from './chart-values.js';
import type { StackConfig, TalosConfig, TalosGeneration } from './config.js';
import { HelmBootstrap } from './bootstrap.js';
import { FluxKustomization, FluxRelease } from './flux.js';
import { MirrorHealth, type MirrorHealthReport } from './health.js';
import type { KubeApi } from './kube-api.js';
import { buildMirrorValues, chartValue, hostPortOf, mirroredRegistries } from './mirror-values.js';
import { MirrorNamespace } from './namespace.js';
import { readNodeHealth, readNodeState, waitForRebootedNode, type DaemonPods } from './node-reports.js';
import { MirrorAlerts } from './observability.js';
import { TalosMirrorConfig, TalosRollingReboot } from './talos-apply.js';
import {
  defaultMirrorEndpoint,
  joinPatches,
  peiliTalosPatches,
  type PeiliTalosPatches,
} from './talos-patch.js';

/** Each node's Talos state in the outputs. */
export interface TalosNodeOutput {
  /** `applied` (no reboot needed) or `external` (apply `talosPatches` yourself). */
  readonly registries: 'applied' | 'external';
  /** `applied`, `pending reboot` (staged until the node's next reboot), a rolling-reboot result, or `external`. */
  readonly keepLayers: string;
}

/** The stack outputs dashboards read; names and shapes are stable (docs/deploy-pulumi.md). */
export interface StackOutputs {
  readonly clusterName: string;
  readonly deployMode: string;
  readonly namespace: string;
  /** hostPort of the node-local registry endpoint. */
  readonly hostPort: number;
  /** Endpoint containerd on each node is pointed at, by node name (from the daemons' host IPs, or Talos's registry config). */
  readonly registryEndpoints: pulumi.Output<Record<string, string>>;
  /** Registries mirrored (empty: all). */
  readonly mirroredRegistries: string[];
  readonly chartUrl: string;
  readonly chartVersion: string;
  /** DaemonSet counts and each node's own report, read after the rollout. */
  readonly health: pulumi.Output<MirrorHealthReport>;
  /** Peili's Talos patches, all documents (what `talosctl patch mc -p @file` takes; '' when Talos is off). */
  readonly talosPatch: string;
  /** The two parts separately, and whether the second needs a reboot. */
  readonly talosPatches: PeiliTalosPatches | Record<string, never>;
  /** Each node's Talos state, by node name. */
  readonly talosNodes: pulumi.Output<Record<string, TalosNodeOutput>>;
  /** Apply mode each node's last apply resolved to, by node name. */
  readonly talosApplyModes: pulumi.Output<Record<string, string>>;
  /** A talosconfig for the nodes (secret; empty when Talos is off or external). */
  readonly talosconfig: pulumi.Output<string>;
}

/** What the program needs from outside (the live cluster); absent in offline runs. */
export interface ProgramDeps {
  /** A Kubernetes API client for the kubeconfig (health per node, rolling reboot). */
  readonly kubeApi?: (kubeconfig: string) => KubeApi;
  /** Options of the rolling reboot's wait (tests inject a clock). */
  readonly rebootWait?: {
    readonly intervalMs?: number;
    readonly delay?: (ms: number) => Promise<void>;
    readonly now?: () => number;
  };
}

/** The chart values a stack's configuration produces (also used by `render` for Git clusters). */
export function mirrorValuesFor(cfg: StackConfig): ChartValues {
  return buildMirrorValues(cfg.values, {
    releaseName: cfg.deploy.releaseName,
    talosRegistries: cfg.talos !== undefined,
  });
}

/** Peili's Talos patches for a stack (undefined when Talos is off). */
export function talosPatchesFor(cfg: StackConfig): PeiliTalosPatches | undefined {
  if (!cfg.talos) return undefined;
  return peiliTalosPatches(
    cfg.talos.talosVersion,
    mirroredRegistries(cfg.values),
    mirrorEndpointFor(cfg.talos, cfg.values),
  );
}

function mirrorEndpointFor(talos: TalosConfig, values: ChartValues): string {
  return talos.mirrorEndpoint ?? defaultMirrorEndpoint(hostPortOf(values));
}

function durationMs(d: string): number {
  let ms = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(ms|s|m|h)/g))
    ms += Number(n) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  return ms;
}

/** Creates every resource of a stack and returns its outputs. */
export function createPeiliStack(cfg: StackConfig, deps: ProgramDeps = {}): StackOutputs {
  const base = cfg.clusterName;
  const { namespace, releaseName } = cfg.deploy;
  const provider = new k8s.Provider(`${base}-k8s`, {
    kubeconfig: cfg.kubeconfig,
    enableServerSideApply: true,
  });
  const k8sOpts = { providers: [provider] };
  const hostPort = hostPortOf(cfg.values);
  const registries = mirroredRegistries(cfg.values);
  const patches = talosPatchesFor(cfg);
  const owned =
    cfg.talos?.management === 'pulumi' && cfg.talos.generation
      ? (cfg.talos as TalosConfig & { generation: TalosGeneration })
      : undefined;

  const talos =
    owned && patches
      ? new TalosMirrorConfig(`${base}-talos`, { clusterName: cfg.clusterName, talos: owned, patches })
      : undefined;

  const ns = new MirrorNamespace(
    `${base}-mirror`,
    {
      settings: {
        clusterName: cfg.clusterName,
        namespace,
        releaseName,
        hostPort,
        registryConfigPath: cfg.talos
          ? 'talos'
          : String(chartValue(cfg.values, 'peili.containerdRegistryConfigPath')),
        mirroredRegistries: registries,
        chartUrl: cfg.chart.url,
        chartVersion: cfg.chart.version,
      },
    },
    k8sOpts,
  );

  // The daemon starts after containerd is pointed at it, and needs its namespace.
  const before: pulumi.Resource[] = [ns, ...(talos ? [talos] : [])];
  const values = mirrorValuesFor(cfg);
  let rollout: pulumi.CustomResource;
  switch (cfg.deploy.mode) {
    case 'helmrelease':
      rollout = new FluxRelease(
        `${base}-flux`,
        {
          namespace,
          releaseName,
          chartUrl: cfg.chart.url,
          chartVersion: cfg.chart.version,
          chartInterval: cfg.chart.interval,
          interval: cfg.deploy.interval,
          coreDns: cfg.deploy.coreDns,
          values,
          ...(cfg.chart.secretRef ? { chartSecretRef: cfg.chart.secretRef } : {}),
          ...(cfg.chart.verify ? { chartVerify: cfg.chart.verify } : {}),
        },
        { ...k8sOpts, dependsOn: before },
      ).release;
      break;
    case 'kustomization': {
      // parseStackConfig guarantees `git` in this mode.
      const git = cfg.deploy.git as NonNullable<StackConfig['deploy']['git']>;
      rollout = new FluxKustomization(
        `${base}-flux`,
        {
          namespace,
          releaseName,
          interval: cfg.deploy.interval,
          coreDns: cfg.deploy.coreDns,
          repository: git.repository,
          path: git.path,
        },
        { ...k8sOpts, dependsOn: before },
      ).kustomization;
      break;
    }
    case 'bootstrap':
      rollout = new HelmBootstrap(
        `${base}-bootstrap`,
        { namespace, releaseName, chartUrl: cfg.chart.url, chartVersion: cfg.chart.version, values },
        { ...k8sOpts, dependsOn: before },
      ).release;
      break;
  }

  if (cfg.observability.alerts) {
    new MirrorAlerts(
      `${base}-alerts`,
      { namespace, releaseName, labels: cfg.observability.alertLabels },
      { ...k8sOpts, dependsOn: [rollout] },
    );
  }

  const talosEndpoint = cfg.talos ? mirrorEndpointFor(cfg.talos, cfg.values) : undefined;
  const pods: DaemonPods = {
    namespace,
    selector: `app.kubernetes.io/name=peili,app.kubernetes.io/instance=${releaseName}`,
    metricsPort: Number(chartValue(cfg.values, 'service.metrics.port')),
    hostPort,
    ...(talosEndpoint ? { talosEndpoint } : {}),
  };
  const kube = deps.kubeApi;
  const api = (): Promise<KubeApi> =>
    new Promise((resolve, reject) => {
      if (!kube) reject(new Error('no Kubernetes API client in this run'));
      else
        cfg.kubeconfig.apply((k) => {
          try {
            resolve(kube(k));
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
    });

  const rollingPlans = talos?.plans.filter((p) => p.after.length > 0) ?? [];
  const rolling =
    owned && talos && rollingPlans.length > 0
      ? new TalosRollingReboot(
          `${base}-talos-reboot`,
          {
            talos: owned,
            plans: rollingPlans,
            before: async (node) => {
              const a = await api();
              const [state, health] = await Promise.all([
                readNodeState(a, node.name),
                readNodeHealth(a, pods),
              ]);
              return { bootId: state.bootId, serving: health[node.name]?.status === 'serving' };
            },
            wait: async (node, b) => {
              // Already serving: this node runs the keep-layers part; its apply had nothing to do.
              if (b.serving) return 'already serving';
              const health = await waitForRebootedNode(await api(), {
                nodeName: node.name,
                bootIdBefore: b.bootId,
                pods,
                timeoutMs: durationMs(owned.rebootTimeout),
                ...deps.rebootWait,
              });
              return `rebooted, ${health.status}`;
            },
          },
          { dependsOn: [rollout] },
        )
      : undefined;

  const health = new MirrorHealth(
    `${base}-health`,
    {
      namespace,
      daemonSetName: releaseName,
      rollout,
      ...(kube ? { readNodes: async () => readNodeHealth(await api(), pods) } : {}),
      ...(rolling ? { after: rolling.results } : {}),
    },
    k8sOpts,
  );

  const nodeNames = cfg.talos?.nodes.map((n) => n.name) ?? [];
  const talosNodes: pulumi.Output<Record<string, TalosNodeOutput>> = pulumi
    .output(rolling?.results ?? {})
    .apply((results) =>
      Object.fromEntries(
        nodeNames.map((name): [string, TalosNodeOutput] => {
          if (!owned) return [name, { registries: 'external', keepLayers: 'external' }];
          const plan = talos?.plans.find((p) => p.node.name === name);
          const keep =
            plan?.keepLayers === 'rolling reboot'
              ? (results[name] ?? 'rolling reboot')
              : (plan?.keepLayers ?? 'unknown');
          return [name, { registries: 'applied', keepLayers: keep }];
        }),
      ),
    );
  const lastApplies = (talos?.plans ?? []).map((p) => {
    const steps = { ...talos?.applies[p.node.name], ...rolling?.applies[p.node.name] };
    const last = Object.values(steps).at(-1);
    return (last?.resolvedApplyMode ?? pulumi.output('none')).apply(
      (m) => [p.node.name, m] as [string, string],
    );
  });

  return {
    clusterName: cfg.clusterName,
    deployMode: cfg.deploy.mode,
    namespace,
    hostPort,
    registryEndpoints: health.report.apply((r) =>
      typeof r.nodes === 'string'
        ? Object.fromEntries(nodeNames.map((n) => [n, talosEndpoint ?? 'read during pulumi up']))
        : Object.fromEntries(Object.entries(r.nodes).map(([n, h]) => [n, h.endpoint])),
    ),
    mirroredRegistries: registries,
    chartUrl: cfg.chart.url,
    chartVersion: cfg.chart.version,
    health: health.report,
    talosPatch: patches ? joinPatches([patches.registries, patches.keepLayers]) : '',
    talosPatches: patches ?? {},
    talosNodes,
    talosApplyModes: pulumi.all(lastApplies).apply((e) => Object.fromEntries(e)),
    talosconfig: talos?.talosconfig ?? pulumi.secret(''),
  };
}
