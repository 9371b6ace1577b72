// Converts the files `talosctl` writes into the JSON shapes the stack's secret config keys take:
//   npx tsx infra/talos-secrets.ts secrets secrets.yaml   -> talosMachineSecrets
//   npx tsx infra/talos-secrets.ts client talosconfig [context] -> talosClientConfiguration
// The output goes to stdout only, for `pulumi config set --secret <key> "$(…)"`.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type { ClientConfiguration, MachineSecrets } from './talos/types.js';

type Doc = Record<string, unknown>;

function at(doc: unknown, path: string): string {
  let v: unknown = doc;
  for (const part of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Doc)[part] : undefined;
  if (typeof v !== 'string' || v === '') throw new Error(`missing ${path}`);
  return v;
}

/** Converts `talosctl gen secrets` output (secrets.yaml) into the provider's machine secrets shape. */
export function fromTalosctlSecrets(yamlText: string): MachineSecrets {
  const doc = parse(yamlText) as Doc;
  const pair = (name: string) => ({ cert: at(doc, `certs.${name}.crt`), key: at(doc, `certs.${name}.key`) });
  const aescbc = (doc.secrets as Doc | undefined)?.aescbcencryptionsecret;
  return {
    certs: {
      etcd: pair('etcd'),
      k8s: pair('k8s'),
      k8sAggregator: pair('k8saggregator'),
      k8sServiceaccount: { key: at(doc, 'certs.k8sserviceaccount.key') },
      os: pair('os'),
    },
    cluster: { id: at(doc, 'cluster.id'), secret: at(doc, 'cluster.secret') },
    secrets: {
      bootstrapToken: at(doc, 'secrets.bootstraptoken'),
      secretboxEncryptionSecret: at(doc, 'secrets.secretboxencryptionsecret'),
      ...(typeof aescbc === 'string' && aescbc !== '' ? { aescbcEncryptionSecret: aescbc } : {}),
    },
    trustdinfo: { token: at(doc, 'trustdinfo.token') },
  };
}

/** Extracts one context's client credentials from a talosconfig. @default its current context */
export function fromTalosconfig(yamlText: string, context?: string): ClientConfiguration {
  const doc = parse(yamlText) as Doc;
  const name = context ?? at(doc, 'context');
  const contexts = (doc.contexts ?? {}) as Doc;
  if (!(name in contexts)) throw new Error(`talosconfig has no context '${name}'`);
  return {
    caCertificate: at(contexts, `${name}.ca`),
    clientCertificate: at(contexts, `${name}.crt`),
    clientKey: at(contexts, `${name}.key`),
  };
}

function main(argv: string[]): void {
  const [what, file, context] = argv;
  if ((what !== 'secrets' && what !== 'client') || !file) {
    throw new Error('usage: talos-secrets.ts secrets <secrets.yaml> | client <talosconfig> [context]');
  }
  const text = readFileSync(file, 'utf8');
  process.stdout.write(
    JSON.stringify(what === 'secrets' ? fromTalosctlSecrets(text) : fromTalosconfig(text, context)),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
