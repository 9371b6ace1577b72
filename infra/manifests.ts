// Pure builders of every Kubernetes object the program creates. They are typed with the
// kubernetes-models interfaces, so an unknown field is a compile error here, and the tests
// validate the same objects against the models' schemas at run time.
import type { INamespace, IConfigMap } from 'kubernetes-models/v1';
import type { IHelmRelease } from '@kubernetes-models/flux-cd/helm.toolkit.fluxcd.io/v2';
import type { IOCIRepository } from '@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1';
import type { IKustomization } from '@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { ChartValues } from './chart-values.js';
import type { ChartSource, ObjectRef } from './config.js';

/** Name of the ConfigMap whose keys Flux substitutes into the Git manifests (`${CLUSTER_NAME}`, …). */
export const CLUSTER_SETTINGS_NAME = 'cluster-settings';

/** Annotation that makes `pulumi up` wait until the object reports `Ready=True`. */
export const WAIT_FOR_READY: Readonly<Record<string, string>> = {
  'pulumi.com/waitFor': 'condition=Ready',
  'pulumi.com/timeoutSeconds': '900',
};

/** Media type of a Helm chart's content layer in an OCI artifact. */
export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

/** Labels of every object. */
export function peiliLabels(releaseName: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'peili', 'app.kubernetes.io/instance': releaseName };
}

/**
 * Labels of the objects only Pulumi applies. The Flux source and release carry `peiliLabels`
 * only: the same builders write the Git manifests Flux applies, where `managed-by: pulumi` would
 * be false.
 */
export function commonLabels(releaseName: string): Record<string, string> {
  return { ...peiliLabels(releaseName), 'app.kubernetes.io/managed-by': 'pulumi' };
}

/** The namespace, privileged because the daemon uses hostPath mounts and a hostPort. */
export function buildNamespace(name: string, releaseName: string): INamespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: {
        ...commonLabels(releaseName),
        'pod-security.kubernetes.io/enforce': 'privileged',
        'pod-security.kubernetes.io/audit': 'privileged',
        'pod-security.kubernetes.io/warn': 'privileged',
      },
    },
  };
}

/** Values of the `cluster-settings` ConfigMap. */
export interface ClusterSettings {
  readonly clusterName: string;
  readonly namespace: string;
  readonly releaseName: string;
  readonly hostPort: number;
  readonly registryConfigPath: string;
  readonly mirroredRegistries: readonly string[];
  readonly chartUrl: string;
  readonly chartVersion: string;
}

/** The `cluster-settings` ConfigMap: the settings Flux substitutes, in the mirror's namespace. */
export function buildClusterSettings(s: ClusterSettings): IConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CLUSTER_SETTINGS_NAME, namespace: s.namespace, labels: commonLabels(s.releaseName) },
    data: {
      CLUSTER_NAME: s.clusterName,
      PEILI_NAMESPACE: s.namespace,
      PEILI_RELEASE_NAME: s.releaseName,
      PEILI_HOST_PORT: String(s.hostPort),
      PEILI_REGISTRY_CONFIG_PATH: s.registryConfigPath,
      PEILI_MIRRORED_REGISTRIES: s.mirroredRegistries.join(','),
      PEILI_CHART_URL: s.chartUrl,
      PEILI_CHART_VERSION: s.chartVersion,
    },
  };
}

/** Inputs of the Flux source and release builders. */
export interface FluxReleaseSpec {
  readonly namespace: string;
  readonly releaseName: string;
  readonly chartUrl: string;
  readonly chartVersion: string;
  readonly chartInterval: string;
  readonly interval: string;
  /** CoreDNS HelmRelease to wait for; `false` for none. */
  readonly coreDns: ObjectRef | false;
  /** Only the values set by the user and the stack (chart defaults stay the chart's). */
  readonly values: ChartValues;
  /** Secret with credentials for the chart registry. @default none */
  readonly chartSecretRef?: string;
  /** Cosign verification of the chart artifact. @default none */
  readonly chartVerify?: ChartSource['verify'];
}

/** The OCIRepository Flux pulls the chart from (the chart's content layer only). */
export function buildOciRepository(s: FluxReleaseSpec): IOCIRepository {
  return {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'OCIRepository',
    metadata: { name: s.releaseName, namespace: s.namespace, labels: peiliLabels(s.releaseName) },
    spec: {
      url: s.chartUrl,
      ref: { tag: s.chartVersion },
      interval: s.chartInterval,
      layerSelector: { mediaType: HELM_CHART_LAYER, operation: 'copy' },
      ...(s.chartSecretRef ? { secretRef: { name: s.chartSecretRef } } : {}),
      ...(s.chartVerify
        ? {
            verify: {
              provider: 'cosign' as const,
              ...(s.chartVerify.secretRef ? { secretRef: { name: s.chartVerify.secretRef } } : {}),
              ...(s.chartVerify.matchOIDCIdentity
                ? { matchOIDCIdentity: s.chartVerify.matchOIDCIdentity.map((m) => ({ ...m })) }
                : {}),
            },
          }
        : {}),
    },
  };
}

/** The HelmRelease: chart by `chartRef`, after CoreDNS, remediated, values from the typed source. */
export function buildHelmRelease(s: FluxReleaseSpec): IHelmRelease {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: {
      name: s.releaseName,
      namespace: s.namespace,
      labels: peiliLabels(s.releaseName),
      annotations: { ...WAIT_FOR_READY },
    },
    spec: {
      interval: s.interval,
      // Same release name and storage namespace as the bootstrap release, so Flux adopts it.
      releaseName: s.releaseName,
      storageNamespace: s.namespace,
      chartRef: { kind: 'OCIRepository', name: s.releaseName, namespace: s.namespace },
      ...(s.coreDns ? { dependsOn: [{ name: s.coreDns.name, namespace: s.coreDns.namespace }] } : {}),
      install: { remediation: { retries: 3 } },
      upgrade: {
        cleanupOnFail: true,
        remediation: { retries: 3, remediateLastFailure: true, strategy: 'rollback' },
      },
      values: toJson(s.values),
    },
  };
}

/** Inputs of the Flux Kustomization builder. */
export interface FluxKustomizationSpec {
  readonly namespace: string;
  readonly releaseName: string;
  readonly interval: string;
  /** CoreDNS Kustomization to wait for; `false` for none. */
  readonly coreDns: ObjectRef | false;
  /** The GitRepository; the Kustomization lives in its namespace, so the source is never cross-namespace. */
  readonly repository: ObjectRef;
  readonly path: string;
}

/**
 * For Git-managed clusters: the Kustomization applying the Git path (in the GitRepository's
 * namespace), after CoreDNS when named, health-checked on the DaemonSet. The Git manifests are
 * rendered in full per cluster (`npm run render`), so there is nothing to substitute.
 */
export function buildKustomization(s: FluxKustomizationSpec): IKustomization {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: {
      name: s.releaseName,
      namespace: s.repository.namespace,
      labels: commonLabels(s.releaseName),
      annotations: { ...WAIT_FOR_READY },
    },
    spec: {
      interval: s.interval,
      path: s.path,
      prune: true,
      sourceRef: { kind: 'GitRepository', name: s.repository.name },
      ...(s.coreDns ? { dependsOn: [{ name: s.coreDns.name, namespace: s.coreDns.namespace }] } : {}),
      healthChecks: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: s.releaseName, namespace: s.namespace },
      ],
      timeout: '5m',
    },
  };
}

/** Alerts on the daemon's own readiness metric and kube-state-metrics' DaemonSet counts. */
export function buildPrometheusRule(
  namespace: string,
  releaseName: string,
  labels: Readonly<Record<string, string>>,
): IPrometheusRule {
  const sel = `namespace="${namespace}", daemonset="${releaseName}"`;
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: releaseName, namespace, labels: { ...commonLabels(releaseName), ...labels } },
    spec: {
      groups: [
        {
          name: 'peili',
          rules: [
            {
              alert: 'PeiliNotReady',
              expr: `min by (pod) (peili_ready{namespace="${namespace}"}) == 0`,
              for: '10m',
              labels: { severity: 'warning' },
              annotations: {
                summary:
                  'A Peili daemon has not been ready for 10 minutes; its node pulls from upstream only.',
              },
            },
            {
              alert: 'PeiliDaemonSetIncomplete',
              expr: `kube_daemonset_status_number_ready{${sel}} < kube_daemonset_status_desired_number_scheduled{${sel}}`,
              for: '15m',
              labels: { severity: 'warning' },
              annotations: { summary: 'Some nodes have no ready Peili pod for 15 minutes.' },
            },
            {
              alert: 'PeiliPeerErrors',
              expr: `sum by (pod) (rate(peili_peer_errors_total{namespace="${namespace}"}[5m])) > 1`,
              for: '15m',
              labels: { severity: 'info' },
              annotations: { summary: 'A Peili daemon keeps failing to reach its peers.' },
            },
          ],
        },
      ],
    },
  };
}

/** Deep-copies typed values into a plain JSON object (drops readonly, proves serialisability). */
export function toJson<T>(value: T): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}
