// Input and output shapes of the Talos provider (pulumiverse/pulumi-talos) that the binding uses,
// written from the provider's published schema (`talos:machine/generated:*` types).
import type * as pulumi from '@pulumi/pulumi';

/** Version of the Talos provider plugin the binding was written against. */
export const TALOS_PROVIDER_VERSION = '0.8.1';

/** Where `pulumi` downloads the Talos provider plugin from. */
export const TALOS_PLUGIN_DOWNLOAD_URL = 'github://api.github.com/pulumiverse';

/** Talos API client credentials (`talos:machine/generated:ClientConfiguration`). */
export interface ClientConfiguration {
  /** PEM of the Talos API CA. */
  readonly caCertificate: string;
  /** PEM of the client certificate. */
  readonly clientCertificate: string;
  /** PEM of the client key (secret). */
  readonly clientKey: string;
}

/** A certificate and its key. */
export interface Certificate {
  /** Base64 PEM certificate. */
  readonly cert: string;
  /** Base64 PEM private key. */
  readonly key: string;
}

/** The cluster's machine secrets bundle (`talos:machine/generated:MachineSecrets`). */
export interface MachineSecrets {
  /** CAs and keys of the cluster. */
  readonly certs: {
    readonly etcd: Certificate;
    readonly k8s: Certificate;
    readonly k8sAggregator: Certificate;
    readonly k8sServiceaccount: { readonly key: string };
    readonly os: Certificate;
  };
  /** Cluster identity. */
  readonly cluster: { readonly id: string; readonly secret: string };
  /** Bootstrap token and secretbox key. */
  readonly secrets: {
    readonly bootstrapToken: string;
    readonly secretboxEncryptionSecret: string;
    readonly aescbcEncryptionSecret?: string;
  };
  /** trustd token. */
  readonly trustdinfo: { readonly token: string };
}

/** Apply modes of `ConfigurationApply` (the provider's `applyMode` values). */
export type ApplyMode = 'auto' | 'reboot' | 'no_reboot' | 'staged' | 'staged_if_needing_reboot';

/** Every apply mode the provider accepts (its schema's `applyMode` values), for validation. */
export const APPLY_MODES: readonly ApplyMode[] = [
  'auto',
  'reboot',
  'no_reboot',
  'staged',
  'staged_if_needing_reboot',
];

/** Machine types a machine configuration is generated for. */
export type MachineType = 'controlplane' | 'worker';

/** Timeouts of the provider's CRUD operations (Go durations such as `10m`). */
export interface Timeouts {
  readonly create?: string;
  readonly update?: string;
  readonly delete?: string;
}

/** Adds the provider version and plugin download URL to resource options, as the SDK does. */
export function withProviderDefaults<T extends pulumi.ResourceOptions | pulumi.InvokeOptions>(
  opts: T | undefined,
): T {
  return {
    version: TALOS_PROVIDER_VERSION,
    pluginDownloadURL: TALOS_PLUGIN_DOWNLOAD_URL,
    ...(opts ?? {}),
  } as T;
}
