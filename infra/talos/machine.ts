// `talos.machine.*`: typed binding to the Talos provider's machine resources and function.
// Names and input keys match @pulumiverse/talos, so switching to the package is an import change.
import * as pulumi from '@pulumi/pulumi';
import {
  withProviderDefaults,
  type ApplyMode,
  type ClientConfiguration,
  type MachineSecrets,
  type MachineType,
  type Timeouts,
} from './types.js';

/** Arguments of `Secrets`. */
export interface SecretsArgs {
  /** Talos version contract the secrets are generated for, e.g. `v1.11`. */
  readonly talosVersion?: pulumi.Input<string>;
}

/** Generates a new machine secrets bundle (`talos:machine/secrets:Secrets`). */
export class Secrets extends pulumi.CustomResource {
  /** The provider's type token. */
  static readonly __pulumiType = 'talos:machine/secrets:Secrets';

  /** Client credentials for the Talos API (secret). */
  declare readonly clientConfiguration: pulumi.Output<ClientConfiguration>;
  /** The generated secrets bundle (secret). */
  declare readonly machineSecrets: pulumi.Output<MachineSecrets>;
  /** Talos version contract used. */
  declare readonly talosVersion: pulumi.Output<string>;

  constructor(name: string, args: SecretsArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      Secrets.__pulumiType,
      name,
      { talosVersion: args.talosVersion, clientConfiguration: undefined, machineSecrets: undefined },
      pulumi.mergeOptions(withProviderDefaults(opts), {
        additionalSecretOutputs: ['clientConfiguration', 'machineSecrets'],
      }),
    );
  }
}

/** Arguments of `ConfigurationApply`. */
export interface ConfigurationApplyArgs {
  /** How the node applies the change; `staged_if_needing_reboot` never reboots. @default 'auto' */
  readonly applyMode?: pulumi.Input<ApplyMode>;
  /** Talos API client credentials. */
  readonly clientConfiguration: pulumi.Input<ClientConfiguration>;
  /** Machine config patches applied on top of `machineConfigurationInput`. @default [] */
  readonly configPatches?: pulumi.Input<pulumi.Input<string>[]>;
  /** Address the Talos API is reached at. @default node */
  readonly endpoint?: pulumi.Input<string>;
  /** The machine configuration the patches apply to. */
  readonly machineConfigurationInput: pulumi.Input<string>;
  /** The node the configuration is applied to. */
  readonly node: pulumi.Input<string>;
  /** Operation timeouts. */
  readonly timeouts?: pulumi.Input<Timeouts>;
}

/** Applies a machine configuration to a node (`talos:machine/configurationApply:ConfigurationApply`). */
export class ConfigurationApply extends pulumi.CustomResource {
  /** The provider's type token. */
  static readonly __pulumiType = 'talos:machine/configurationApply:ConfigurationApply';

  /** Apply mode requested. */
  declare readonly applyMode: pulumi.Output<string>;
  /** Mode actually used (`auto` or `staged` when `staged_if_needing_reboot` was asked). */
  declare readonly resolvedApplyMode: pulumi.Output<string>;
  /** The final machine configuration, patches applied (secret). */
  declare readonly machineConfiguration: pulumi.Output<string>;
  /** The node. */
  declare readonly node: pulumi.Output<string>;
  /** The endpoint. */
  declare readonly endpoint: pulumi.Output<string>;

  constructor(name: string, args: ConfigurationApplyArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      ConfigurationApply.__pulumiType,
      name,
      {
        applyMode: args.applyMode,
        clientConfiguration: pulumi.secret(args.clientConfiguration),
        configPatches: args.configPatches,
        endpoint: args.endpoint,
        machineConfigurationInput: pulumi.secret(args.machineConfigurationInput),
        node: args.node,
        timeouts: args.timeouts,
        machineConfiguration: undefined,
        resolvedApplyMode: undefined,
      },
      pulumi.mergeOptions(withProviderDefaults(opts), {
        additionalSecretOutputs: ['machineConfiguration', 'machineConfigurationInput', 'clientConfiguration'],
      }),
    );
  }
}

/** Arguments of `getConfiguration` / `getConfigurationOutput`. */
export interface GetConfigurationArgs {
  /** Kubernetes API endpoint, e.g. `https://10.0.0.10:6443`. */
  readonly clusterEndpoint: pulumi.Input<string>;
  /** Cluster name. */
  readonly clusterName: pulumi.Input<string>;
  /** Patches applied to the generated configuration. @default [] */
  readonly configPatches?: pulumi.Input<pulumi.Input<string>[]>;
  /** Include documentation comments. @default false */
  readonly docs?: pulumi.Input<boolean>;
  /** Include examples. @default false */
  readonly examples?: pulumi.Input<boolean>;
  /** Kubernetes version. @default the provider's */
  readonly kubernetesVersion?: pulumi.Input<string>;
  /** The cluster's secrets bundle. */
  readonly machineSecrets: pulumi.Input<MachineSecrets>;
  /** Machine type. */
  readonly machineType: pulumi.Input<MachineType>;
  /** Talos version contract, e.g. `v1.11`. @default the provider's */
  readonly talosVersion?: pulumi.Input<string>;
}

/** Result of `talos:machine/getConfiguration:getConfiguration`. */
export interface GetConfigurationResult {
  /** Cluster endpoint. */
  readonly clusterEndpoint: string;
  /** Cluster name. */
  readonly clusterName: string;
  /** The generated machine configuration (YAML). */
  readonly machineConfiguration: string;
  /** Machine type. */
  readonly machineType: string;
  /** Function id. */
  readonly id: string;
}

/** The provider's function token. */
export const GET_CONFIGURATION_TOKEN = 'talos:machine/getConfiguration:getConfiguration';

function getConfigurationInputs(args: GetConfigurationArgs): pulumi.Inputs {
  return {
    clusterEndpoint: args.clusterEndpoint,
    clusterName: args.clusterName,
    configPatches: args.configPatches,
    docs: args.docs,
    examples: args.examples,
    kubernetesVersion: args.kubernetesVersion,
    machineSecrets: args.machineSecrets,
    machineType: args.machineType,
    talosVersion: args.talosVersion,
  };
}

/** Generates a machine configuration from the cluster secrets (Output form). */
export function getConfigurationOutput(
  args: GetConfigurationArgs,
  opts?: pulumi.InvokeOutputOptions,
): pulumi.Output<GetConfigurationResult> {
  return pulumi.runtime.invokeOutput(
    GET_CONFIGURATION_TOKEN,
    getConfigurationInputs(args),
    withProviderDefaults(opts),
  );
}

/** Generates a machine configuration from the cluster secrets (Promise form). */
export function getConfiguration(
  args: GetConfigurationArgs,
  opts?: pulumi.InvokeOptions,
): Promise<GetConfigurationResult> {
  return pulumi.runtime.invoke(
    GET_CONFIGURATION_TOKEN,
    getConfigurationInputs(args),
    withProviderDefaults(opts),
  );
}
