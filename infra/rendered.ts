// Turns a recorded program run into what a reviewer reads: the Kubernetes objects Pulumi would
// apply (one YAML file each, plus a kustomization.yaml listing them), the bootstrap Helm release,
// the Talos patch and the stack outputs.
import { stringify } from 'yaml';
import type { RunResult } from './mock-engine.js';

/** A Kubernetes object as applied. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string } & Record<string, unknown>;
  readonly [field: string]: unknown;
}

/** Pulumi's Helm release type token (the bootstrap path). */
export const HELM_RELEASE_TYPE = 'kubernetes:helm.sh/v3:Release';

/** Drops undefined/null fields Pulumi's SDK leaves in inputs. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined && x !== null)
        .map(([k, x]) => [k, clean(x)]),
    );
  }
  return v;
}

/** The Kubernetes objects the program creates, in creation order. */
export function kubernetesObjects(run: RunResult): KubeObject[] {
  return run.registrations
    .filter(
      (r) =>
        r.kind === 'register' && r.custom && r.type.startsWith('kubernetes:') && r.type !== HELM_RELEASE_TYPE,
    )
    .map((r) => clean(r.inputs) as KubeObject);
}

/** The inputs of the bootstrap Helm releases the program creates. */
export function helmReleases(run: RunResult): Record<string, unknown>[] {
  return run.registrations
    .filter((r) => r.kind === 'register' && r.type === HELM_RELEASE_TYPE)
    .map((r) => clean(r.inputs) as Record<string, unknown>);
}

/** File name of an object: `<kind>-<namespace>-<name>.yaml`, lower case. */
export function fileNameFor(obj: KubeObject): string {
  return (
    [obj.kind, obj.metadata.namespace, obj.metadata.name].filter(Boolean).join('-').toLowerCase() + '.yaml'
  );
}

/** A kustomization.yaml listing `resources`. */
export function kustomizationYaml(resources: readonly string[]): string {
  return stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [...resources],
  });
}

/** Files (name → content) for a set of objects, with their kustomization.yaml. */
export function manifestFiles(objects: readonly KubeObject[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const obj of objects) {
    const name = fileNameFor(obj);
    if (files.has(name)) throw new Error(`two objects render to ${name}`);
    files.set(name, stringify(obj));
  }
  files.set('kustomization.yaml', kustomizationYaml([...files.keys()]));
  return files;
}

/** Stack outputs for the reviewer, secret ones redacted. */
export function publicOutputs(run: RunResult): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(run.outputs).map(([k, v]) => [k, run.secretOutputs.includes(k) ? '[secret]' : v]),
  );
}
