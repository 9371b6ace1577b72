// The composition root: validated config -> one Kubernetes provider -> the components -> the
// stack outputs. Stacks differ by configuration only.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import type { StackConfig } from './config.js';
import { HelmBootstrap } from './bootstrap.js';
import { FluxKustomization, FluxRelease } from './flux.js';
import { MirrorHealth, type MirrorHealthReport } from './health.js';
import {
  buildMirrorValues,
  nodeRegistryEndpoint,
  TALOS_REGISTRY_CONFIG_PATH,
  type MirrorValues,
} from './mirror-values.js';
import { MirrorNamespace } from './namespace.js';
import { MirrorAlerts } from './observability.js';
import { TalosContainerdPatch } from './talos-patch.js';

/** The stack outputs dashboards read; names and shapes are stable (docs/deploy-pulumi.md). */
export interface StackOutputs {
  /** Cluster name. */
  readonly clusterName: string;
  /** `helmrelease`, `kustomization` or `bootstrap`. */
  readonly deployMode: string;
  /** Namespace of the mirror. */
  readonly namespace: string;
  /** hostPort of the node-local registry endpoint. */
  readonly hostPort: number;
  /** Registry endpoint containerd on each node uses, by node name. */
  readonly registryEndpoints: Record<string, string>;
  /** Registries mirrored (empty: all). */
  readonly mirroredRegistries: string[];
  /** Chart reference. */
  readonly chartUrl: string;
  /** Chart version deployed. */
  readonly chartVersion: string;
  /** DaemonSet desired/ready/updated and a status word, read after the rollout. */
  readonly health: pulumi.Output<MirrorHealthReport>;
  /** The Talos machine-config patch applied to every node (empty when Talos is off). */
  readonly talosPatch: string;
  /** Apply mode each node resolved to, by node name. */
  readonly talosApplyModes: pulumi.Output<Record<string, string>>;
  /** A talosconfig for the nodes (secret; empty when Talos is off). */
  readonly talosconfig: pulumi.Output<string>;
}

/** The chart values a stack's configuration produces (also used by `render` for Git clusters). */
export function mirrorValuesFor(cfg: StackConfig): MirrorValues {
  return buildMirrorValues({
    releaseName: cfg.deploy.releaseName,
    ...(cfg.mirror.imageRepository ? { imageRepository: cfg.mirror.imageRepository } : {}),
    ...(cfg.mirror.imageTag ? { imageTag: cfg.mirror.imageTag } : {}),
    ...(cfg.mirror.imageDigest ? { imageDigest: cfg.mirror.imageDigest } : {}),
    mirroredRegistries: cfg.mirror.mirroredRegistries,
    prependExisting: cfg.mirror.prependExisting,
    resolveTags: cfg.mirror.resolveTags,
    resolveTagsFilter: cfg.mirror.resolveTagsFilter,
    logLevel: cfg.mirror.logLevel,
    hostPort: cfg.mirror.hostPort,
    registryConfigPath: TALOS_REGISTRY_CONFIG_PATH,
    serviceMonitor: cfg.observability.serviceMonitor,
    serviceMonitorLabels: cfg.observability.serviceMonitorLabels,
    grafanaDashboard: cfg.observability.grafanaDashboard,
  });
}

/** Creates every resource of a stack and returns its outputs. */
export function createPeiliStack(cfg: StackConfig): StackOutputs {
  const base = cfg.clusterName;
  const { namespace, releaseName } = cfg.deploy;
  const provider = new k8s.Provider(`${base}-k8s`, {
    kubeconfig: cfg.kubeconfig,
    enableServerSideApply: true,
  });
  const k8sOpts = { providers: [provider] };

  const talos = cfg.talos
    ? new TalosContainerdPatch(`${base}-talos`, {
        clusterName: cfg.clusterName,
        clusterEndpoint: cfg.talos.clusterEndpoint,
        talosVersion: cfg.talos.talosVersion,
        ...(cfg.talos.kubernetesVersion ? { kubernetesVersion: cfg.talos.kubernetesVersion } : {}),
        configPatches: cfg.talos.configPatches,
        nodes: cfg.talos.nodes,
        clientConfiguration: cfg.talos.clientConfiguration,
        machineSecrets: cfg.talos.machineSecrets,
        applyMode: cfg.talos.applyMode,
      })
    : undefined;

  const ns = new MirrorNamespace(
    `${base}-mirror`,
    {
      settings: {
        clusterName: cfg.clusterName,
        namespace,
        releaseName,
        hostPort: cfg.mirror.hostPort,
        registryConfigPath: TALOS_REGISTRY_CONFIG_PATH,
        mirroredRegistries: cfg.mirror.mirroredRegistries,
        chartUrl: cfg.chart.url,
        chartVersion: cfg.chart.version,
      },
    },
    k8sOpts,
  );

  // The daemon must not start before containerd keeps unpacked layers, and needs its namespace.
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
      { namespace, releaseName, labels: cfg.observability.serviceMonitorLabels },
      { ...k8sOpts, dependsOn: [rollout] },
    );
  }

  const health = new MirrorHealth(
    `${base}-health`,
    { namespace, daemonSetName: releaseName, rollout },
    k8sOpts,
  );

  return {
    clusterName: cfg.clusterName,
    deployMode: cfg.deploy.mode,
    namespace,
    hostPort: cfg.mirror.hostPort,
    registryEndpoints: Object.fromEntries(
      (cfg.talos?.nodes ?? []).map((n) => [n.name, nodeRegistryEndpoint(n.address, cfg.mirror.hostPort)]),
    ),
    mirroredRegistries: [...cfg.mirror.mirroredRegistries],
    chartUrl: cfg.chart.url,
    chartVersion: cfg.chart.version,
    health: health.report,
    talosPatch: talos?.patch ?? '',
    talosApplyModes: talos?.resolvedApplyModes ?? pulumi.output<Record<string, string>>({}),
    talosconfig: talos?.talosconfig ?? pulumi.secret(''),
  };
}
