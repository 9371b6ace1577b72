// The mirror's namespace (Pod Security: privileged) and the `cluster-settings` ConfigMap.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';
import { buildClusterSettings, buildNamespace, type ClusterSettings } from './manifests.js';

/** Arguments of `MirrorNamespace`. */
export interface MirrorNamespaceArgs {
  /** Settings written into `cluster-settings`; `namespace` names the namespace created. */
  readonly settings: ClusterSettings;
}

/** Creates the privileged namespace and the `cluster-settings` ConfigMap in it. */
export class MirrorNamespace extends pulumi.ComponentResource {
  /** The namespace. */
  public readonly namespace: k8s.core.v1.Namespace;
  /** The `cluster-settings` ConfigMap. */
  public readonly clusterSettings: k8s.core.v1.ConfigMap;

  constructor(name: string, args: MirrorNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:k8s:MirrorNamespace', name, {}, opts);
    const ns = buildNamespace(args.settings.namespace, args.settings.releaseName);
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      { metadata: ns.metadata },
      { parent: this, dependsOn: inheritedDependsOn(opts) },
    );
    const cm = buildClusterSettings(args.settings);
    this.clusterSettings = new k8s.core.v1.ConfigMap(
      `${name}-cluster-settings`,
      { metadata: cm.metadata, data: cm.data },
      { parent: this, dependsOn: [this.namespace] },
    );
    this.registerOutputs({ namespace: this.namespace.metadata.name });
  }
}
