// For a cluster where Flux is not running yet: install the same chart with the same values through
// Pulumi's Helm release. Same release name and namespace as the HelmRelease, so Flux adopts the
// release later (an upgrade with identical values, no pod restarts).
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';
import { toJson } from './manifests.js';
import type { ChartValues } from './chart-values.js';

/** Arguments of `HelmBootstrap`. */
export interface HelmBootstrapArgs {
  /** Namespace of the release (created elsewhere). */
  readonly namespace: string;
  /** Release name. */
  readonly releaseName: string;
  /** `oci://…` URL of the chart (without tag). */
  readonly chartUrl: string;
  /** Chart version. */
  readonly chartVersion: string;
  /** Chart values (the same object the HelmRelease uses). */
  readonly values: ChartValues;
}

/** Installs the chart directly with Helm, in a way Flux can take over. */
export class HelmBootstrap extends pulumi.ComponentResource {
  /** The Helm release. */
  public readonly release: k8s.helm.v3.Release;

  constructor(name: string, args: HelmBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:bootstrap:HelmBootstrap', name, {}, opts);
    this.release = new k8s.helm.v3.Release(
      `${name}-release`,
      {
        name: args.releaseName,
        namespace: args.namespace,
        createNamespace: false,
        chart: args.chartUrl,
        version: args.chartVersion,
        values: toJson(args.values),
        atomic: true,
        timeout: 600,
      },
      // Switching the stack to Flux later must not uninstall what Flux is about to adopt.
      { parent: this, retainOnDelete: true, dependsOn: inheritedDependsOn(opts) },
    );
    this.registerOutputs({ status: this.release.status });
  }
}
