// `talos.client.*`: typed binding to the Talos provider's client configuration function.
import * as pulumi from '@pulumi/pulumi';
import { withProviderDefaults, type ClientConfiguration } from './types.js';

/** Arguments of `getConfiguration` / `getConfigurationOutput`. */
export interface GetConfigurationArgs {
  /** Client credentials. */
  readonly clientConfiguration: pulumi.Input<ClientConfiguration>;
  /** Cluster (context) name in the talosconfig. */
  readonly clusterName: pulumi.Input<string>;
  /** Talos API endpoints written into the talosconfig. @default [] */
  readonly endpoints?: pulumi.Input<pulumi.Input<string>[]>;
  /** Default nodes written into the talosconfig. @default [] */
  readonly nodes?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Result of `talos:client/getConfiguration:getConfiguration`. */
export interface GetConfigurationResult {
  /** Cluster name. */
  readonly clusterName: string;
  /** The talosconfig file content (YAML, secret). */
  readonly talosConfig: string;
  /** Function id. */
  readonly id: string;
}

/** The provider's function token. */
export const GET_CONFIGURATION_TOKEN = 'talos:client/getConfiguration:getConfiguration';

function inputs(args: GetConfigurationArgs): pulumi.Inputs {
  return {
    clientConfiguration: args.clientConfiguration,
    clusterName: args.clusterName,
    endpoints: args.endpoints,
    nodes: args.nodes,
  };
}

/** Renders a talosconfig for the cluster (Output form). */
export function getConfigurationOutput(
  args: GetConfigurationArgs,
  opts?: pulumi.InvokeOutputOptions,
): pulumi.Output<GetConfigurationResult> {
  return pulumi.runtime.invokeOutput(GET_CONFIGURATION_TOKEN, inputs(args), withProviderDefaults(opts));
}

/** Renders a talosconfig for the cluster (Promise form). */
export function getConfiguration(
  args: GetConfigurationArgs,
  opts?: pulumi.InvokeOptions,
): Promise<GetConfigurationResult> {
  return pulumi.runtime.invoke(GET_CONFIGURATION_TOKEN, inputs(args), withProviderDefaults(opts));
}
