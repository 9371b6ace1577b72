// Reads a stack's `Pulumi.<stack>.yaml` into the mock engine's config, for offline runs (tests,
// `npm run render`). Secrets cannot be decrypted offline: every secret key gets a placeholder of
// the right shape, marked secret, so the program runs exactly as with real values.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CONFIG_NAMESPACE } from './config.js';
import type { MockConfig } from './mock-engine.js';

/** The repository root (where Pulumi.yaml lives). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Stack names with a stack file in the repository. */
export const STACKS = ['infra', 'apps'] as const;

/** Placeholder values for the secret keys, in the shapes the config expects. */
export const SECRET_PLACEHOLDERS: Readonly<Record<string, unknown>> = {
  kubeconfig: 'apiVersion: v1\nkind: Config\n# placeholder: the real kubeconfig is a stack secret\n',
  talosClientConfiguration: {
    caCertificate: 'placeholder-ca',
    clientCertificate: 'placeholder-crt',
    clientKey: 'placeholder-key',
  },
  talosMachineSecrets: {
    certs: {
      etcd: { cert: 'placeholder', key: 'placeholder' },
      k8s: { cert: 'placeholder', key: 'placeholder' },
      k8sAggregator: { cert: 'placeholder', key: 'placeholder' },
      k8sServiceaccount: { key: 'placeholder' },
      os: { cert: 'placeholder', key: 'placeholder' },
    },
    cluster: { id: 'placeholder', secret: 'placeholder' },
    secrets: { bootstrapToken: 'placeholder', secretboxEncryptionSecret: 'placeholder' },
    trustdinfo: { token: 'placeholder' },
  },
};

function isSecure(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'secure' in v;
}

/** Turns a stack file's `config:` map into mock config, secrets replaced by placeholders. */
export function stackFileToMockConfig(text: string): MockConfig {
  const doc = (parse(text) ?? {}) as { config?: Record<string, unknown> };
  const values: Record<string, unknown> = {};
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    if (!key.startsWith(prefix)) continue;
    const short = key.slice(prefix.length);
    if (isSecure(value) || short in SECRET_PLACEHOLDERS) continue;
    values[short] = value;
  }
  return { values: { ...values, ...SECRET_PLACEHOLDERS }, secretKeys: Object.keys(SECRET_PLACEHOLDERS) };
}

/** Reads `Pulumi.<stack>.yaml` from the repository as mock config. */
export function loadStackFile(stack: string, root: string = REPO_ROOT): MockConfig {
  return stackFileToMockConfig(readFileSync(join(root, `Pulumi.${stack}.yaml`), 'utf8'));
}
