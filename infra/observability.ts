// Alerts for the mirror (a PrometheusRule), when the stack turns them on.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';
import { buildPrometheusRule } from './manifests.js';

/** Arguments of `MirrorAlerts`. */
export interface MirrorAlertsArgs {
  /** Namespace of the mirror. */
  readonly namespace: string;
  /** Release (and DaemonSet) name. */
  readonly releaseName: string;
  /** Labels Prometheus selects rules by. @default {} */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A PrometheusRule with the mirror's alerts. */
export class MirrorAlerts extends pulumi.ComponentResource {
  /** The PrometheusRule. */
  public readonly rule: k8s.apiextensions.CustomResource;

  constructor(name: string, args: MirrorAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:observability:MirrorAlerts', name, {}, opts);
    const rule = buildPrometheusRule(args.namespace, args.releaseName, args.labels ?? {});
    this.rule = new k8s.apiextensions.CustomResource(
      `${name}-rule`,
      { apiVersion: rule.apiVersion, kind: rule.kind, metadata: rule.metadata, spec: rule.spec },
      { parent: this, dependsOn: inheritedDependsOn(opts) },
    );
    this.registerOutputs({});
  }
}
