// Prepares every Talos node's containerd for the mirror: keep unpacked layers (or the blobs the
// mirror serves vanish after unpack) and keep the registry config path the chart writes into.
// The patch is applied on top of the node's own machine configuration, regenerated from the
// cluster secrets and the node's own patches, so nothing else in its configuration changes.
import * as pulumi from '@pulumi/pulumi';
import { stringify } from 'yaml';
import { TALOS_REGISTRY_CONFIG_PATH } from './mirror-values.js';
import * as talos from './talos/index.js';
import { inheritedDependsOn } from './component-options.js';
import type { TalosNode } from './config.js';

/** The CRI drop-in file Talos merges into containerd's configuration. */
export const CRI_CUSTOMIZATION_PATH = '/etc/cri/conf.d/20-customization.part';

/** containerd 2's CRI images plugin key (Talos ≥ 1.8); the 1.x key is silently ignored there. */
export const CRI_IMAGES_PLUGIN = 'io.containerd.cri.v1.images';

/** The TOML of the CRI drop-in: keep unpacked layers, registry config path at Talos' hosts dir. */
export function criCustomizationToml(registryConfigPath: string = TALOS_REGISTRY_CONFIG_PATH): string {
  return [
    `[plugins."${CRI_IMAGES_PLUGIN}"]`,
    '  discard_unpacked_layers = false',
    `[plugins."${CRI_IMAGES_PLUGIN}".registry]`,
    `  config_path = "${registryConfigPath}"`,
    '',
  ].join('\n');
}

/** The machine-config patch (strategic merge, YAML) that adds the CRI drop-in file. */
export function buildTalosPatch(registryConfigPath: string = TALOS_REGISTRY_CONFIG_PATH): string {
  return stringify({
    machine: {
      files: [
        { op: 'create', path: CRI_CUSTOMIZATION_PATH, content: criCustomizationToml(registryConfigPath) },
      ],
    },
  });
}

/** Arguments of `TalosContainerdPatch`. */
export interface TalosContainerdPatchArgs {
  /** Cluster name the machine configs were generated with. */
  readonly clusterName: string;
  /** Kubernetes API endpoint the machine configs were generated with. */
  readonly clusterEndpoint: string;
  /** Talos version contract, e.g. `v1.11`. */
  readonly talosVersion: string;
  /** Kubernetes version the configs were generated with. @default the provider's */
  readonly kubernetesVersion?: string;
  /** Cluster-wide patches the configs were generated with. @default [] */
  readonly configPatches?: readonly string[];
  /** The nodes to patch. */
  readonly nodes: readonly TalosNode[];
  /** Talos API client credentials (secret). */
  readonly clientConfiguration: pulumi.Input<talos.ClientConfiguration>;
  /** Cluster machine secrets (secret). */
  readonly machineSecrets: pulumi.Input<talos.MachineSecrets>;
  /** Apply mode. @default 'staged_if_needing_reboot' (never reboots; staged until the next reboot) */
  readonly applyMode?: talos.ApplyMode;
}

/** Applies the containerd patch to every Talos node, one node after the other. */
export class TalosContainerdPatch extends pulumi.ComponentResource {
  /** The machine-config patch applied to every node (YAML). */
  public readonly patch: string;
  /** One apply per node, in node order. */
  public readonly applies: readonly talos.machine.ConfigurationApply[];
  /** Mode each node's apply resolved to (`auto` or `staged`), by node name. */
  public readonly resolvedApplyModes: pulumi.Output<Record<string, string>>;
  /** A talosconfig for the nodes (secret). */
  public readonly talosconfig: pulumi.Output<string>;

  constructor(name: string, args: TalosContainerdPatchArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:talos:TalosContainerdPatch', name, {}, opts);
    this.patch = buildTalosPatch();
    const applies: talos.machine.ConfigurationApply[] = [];
    for (const node of args.nodes) {
      const generated = talos.machine.getConfigurationOutput(
        {
          clusterName: args.clusterName,
          clusterEndpoint: args.clusterEndpoint,
          machineType: node.machineType,
          machineSecrets: args.machineSecrets,
          talosVersion: args.talosVersion,
          ...(args.kubernetesVersion ? { kubernetesVersion: args.kubernetesVersion } : {}),
          configPatches: [...(args.configPatches ?? []), ...node.configPatches],
          docs: false,
          examples: false,
        },
        { parent: this },
      );
      // One node at a time: if a mode that may reboot is chosen, the cluster keeps its quorum.
      const previous = applies.at(-1);
      applies.push(
        new talos.machine.ConfigurationApply(
          `${name}-${node.name}`,
          {
            clientConfiguration: args.clientConfiguration,
            machineConfigurationInput: pulumi.secret(generated.machineConfiguration),
            node: node.address,
            endpoint: node.endpoint,
            configPatches: [this.patch],
            applyMode: args.applyMode ?? 'staged_if_needing_reboot',
          },
          { parent: this, dependsOn: [...inheritedDependsOn(opts), ...(previous ? [previous] : [])] },
        ),
      );
    }
    this.applies = applies;
    this.resolvedApplyModes = pulumi
      .all(applies.map((a) => a.resolvedApplyMode))
      .apply((modes) => Object.fromEntries(args.nodes.map((n, i) => [n.name, modes[i] ?? 'unknown'])));
    this.talosconfig = pulumi.secret(
      talos.client.getConfigurationOutput(
        {
          clusterName: args.clusterName,
          clientConfiguration: args.clientConfiguration,
          endpoints: args.nodes.filter((n) => n.machineType === 'controlplane').map((n) => n.endpoint),
          nodes: args.nodes.map((n) => n.address),
        },
        { parent: this },
      ).talosConfig,
    );
    this.registerOutputs({ patch: this.patch, resolvedApplyModes: this.resolvedApplyModes });
  }
}
