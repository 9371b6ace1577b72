// Shared fixtures of the infra tests: a valid stack configuration to start from.
import type { ConfigSource } from './config.js';
import type { MockConfig } from './mock-engine.js';
import { SECRET_PLACEHOLDERS } from './stack-files.js';

/** Secret keys of a valid configuration. */
export const SECRET_KEYS = ['kubeconfig', 'talosClientConfiguration', 'talosMachineSecrets'];

/** A valid configuration (as stack-file values) for a 2-node Talos cluster in helmrelease mode. */
export function validValues(): Record<string, unknown> {
  return {
    clusterName: 'lab',
    kubeconfig: 'apiVersion: v1\nkind: Config\n',
    talosClientConfiguration: { caCertificate: 'Y2E=', clientCertificate: 'Y3J0', clientKey: 'a2V5' },
    talosMachineSecrets: structuredClone(SECRET_PLACEHOLDERS.talosMachineSecrets),
    talos: {
      talosVersion: 'v1.11.6',
      kubernetesVersion: '1.34.1',
      installImage: 'ghcr.io/siderolabs/installer:v1.11.6',
      installDisk: '/dev/sda',
      clusterEndpoint: 'https://10.0.0.10:6443',
      nodes: [
        { name: 'cp-1', address: '10.0.0.11', machineType: 'controlplane', configPatches: ['machine: {}\n'] },
        { name: 'worker-1', address: '10.0.0.21', endpoint: '10.0.0.11', machineType: 'worker' },
      ],
    },
    chart: { version: '0.1.0' },
    deploy: { coreDns: { name: 'coredns', namespace: 'flux-system' } },
    values: { peili: { mirroredRegistries: ['docker.io', 'ghcr.io'] } },
  };
}

/** Mock-engine config from values (secret keys marked secret). */
export function mockConfig(
  values: Record<string, unknown>,
  secretKeys: readonly string[] = SECRET_KEYS,
): MockConfig {
  return { values, secretKeys: secretKeys.filter((k) => k in values) };
}

/** A ConfigSource over values, as the engine would present them. */
export function sourceOf(
  values: Record<string, unknown>,
  secretKeys: readonly string[] = SECRET_KEYS,
): ConfigSource {
  return {
    get: (key) => {
      const v = values[key];
      if (v === undefined) return undefined;
      return typeof v === 'string' ? v : JSON.stringify(v);
    },
    isSecret: (key) => secretKeys.includes(key),
  };
}
