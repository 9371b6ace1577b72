// The chart values a stack deploys: exactly what the user set in `peili:values`, plus the few keys
// the stack itself must decide. Nothing else is copied from the chart's defaults, so a new chart
// version's defaults apply. The Flux HelmRelease, the Git manifests and the bootstrap Helm release
// all take this one object, so Flux can adopt a bootstrapped release without a redeploy.
import { effectiveValue, mergeValues, type ChartValues, type Json } from './chart-values.js';

/** What the stack decides about the chart, beyond the user's values. */
export interface StackOwnedValues {
  /** Release name; forced as `fullnameOverride` so the DaemonSet's name is known. */
  readonly releaseName: string;
  /**
   * Whether Talos's own registry config points containerd at the mirror (the chart then writes
   * no hosts.toml: `peili.configureHosts: false`).
   */
  readonly talosRegistries: boolean;
}

/** The keys the stack sets itself; a user value there is refused (config.ts names the key). */
export const STACK_OWNED_VALUES = ['fullnameOverride', 'peili.configureHosts'] as const;

/** The chart values of a stack: the user's values plus the stack-owned keys. */
export function buildMirrorValues(user: ChartValues, stack: StackOwnedValues): ChartValues {
  const forced: ChartValues = { fullnameOverride: stack.releaseName };
  if (stack.talosRegistries) {
    // The Talos patch is written for this port and these registries: pin them so a different
    // chart default can never leave containerd pointing at a port nothing listens on.
    forced.peili = {
      configureHosts: false,
      mirroredRegistries: mirroredRegistries(user),
    };
    forced.service = { registry: { hostPort: hostPortOf(user) } };
  }
  return mergeValues(user, forced);
}

/** The registries mirrored (`[]` = every registry), as the chart will see them. */
export function mirroredRegistries(user: ChartValues): string[] {
  const v = effectiveValue(user, 'peili.mirroredRegistries');
  return Array.isArray(v) ? v.map(String) : [];
}

/** The node port of the registry API, as the chart will see it. */
export function hostPortOf(user: ChartValues): number {
  return Number(effectiveValue(user, 'service.registry.hostPort'));
}

/** The value at a dotted path as the chart will see it (user value, else chart default). */
export function chartValue(user: ChartValues, path: string): Json | undefined {
  return effectiveValue(user, path);
}

/** The endpoint a node's pod-written hosts.toml points containerd at: its host IP and the hostPort. */
export function nodeRegistryEndpoint(hostIp: string, hostPort: number): string {
  const host = hostIp.includes(':') ? `[${hostIp}]` : hostIp;
  return `http://${host}:${hostPort}`;
}
