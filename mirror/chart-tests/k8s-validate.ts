// Schema checks of rendered objects: each kind's kubernetes-models class validates types and
// required fields, and `unknownFields` finds what those schemas let through silently (a misspelt
// or misplaced key is simply ignored by the generated validators, and by a lenient API server).
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { RoleBinding, Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { K8sObject } from './helm.js';

/** What every kubernetes-models class offers: a constructor and a validate() that throws. */
interface ModelClass {
  new (data: never): { validate(): void };
  readonly prototype: { validate(): void };
}

/** The model of each `apiVersion/kind` the chart may render (GrafanaDashboard has none: checked by hand). */
export const MODELS: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ['apps/v1/DaemonSet', DaemonSet as unknown as ModelClass],
  ['batch/v1/Job', Job as unknown as ModelClass],
  ['v1/Service', Service as unknown as ModelClass],
  ['v1/ServiceAccount', ServiceAccount as unknown as ModelClass],
  ['v1/ConfigMap', ConfigMap as unknown as ModelClass],
  ['rbac.authorization.k8s.io/v1/Role', Role as unknown as ModelClass],
  ['rbac.authorization.k8s.io/v1/RoleBinding', RoleBinding as unknown as ModelClass],
  ['monitoring.coreos.com/v1/ServiceMonitor', ServiceMonitor as unknown as ModelClass],
]);

/** `apiVersion/kind` of an object, the key of MODELS. */
export function typeKey(obj: K8sObject): string {
  return `${obj.apiVersion}/${obj.kind}`;
}

/** Validates `obj` against its model; throws naming the object and the schema's complaint. */
export function validateObject(obj: K8sObject): void {
  const model = MODELS.get(typeKey(obj));
  if (!model) throw new Error(`no model for ${typeKey(obj)} ${obj.metadata.name}`);
  try {
    new model(obj as never).validate();
  } catch (error) {
    throw new Error(`${typeKey(obj)} ${obj.metadata.name}: ${(error as Error).message}`);
  }
}

/**
 * JSON-pointer paths of the fields of `obj` that its model's schema does not know.
 *
 * The generated validators read every property their schema declares (`data.containerPort`, …)
 * and enumerate the keys only of free-form maps (labels, annotations, ConfigMap data). Running the
 * validator over a Proxy that records those reads tells, for every object in the tree, which keys
 * the schema knows; anything else is unknown.
 */
export function unknownFields(obj: K8sObject): string[] {
  const model = MODELS.get(typeKey(obj));
  if (!model) throw new Error(`no model for ${typeKey(obj)}`);
  const read = new Map<string, Set<string>>();
  const maps = new Set<string>();
  const wrap = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    return new Proxy(value as object, {
      get(target, key, receiver) {
        const child: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string') return child;
        let keys = read.get(path);
        if (!keys) read.set(path, (keys = new Set()));
        keys.add(key);
        return wrap(child, `${path}/${key}`);
      },
      ownKeys(target) {
        maps.add(path);
        return Reflect.ownKeys(target);
      },
    });
  };
  try {
    model.prototype.validate.call(wrap(JSON.parse(JSON.stringify(obj)), ''));
  } catch {
    // Type errors are validateObject's to report; here only the reads matter.
  }
  const unknown: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${path}/${i}`));
      return;
    }
    const known = read.get(path) ?? new Set<string>();
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      if (!maps.has(path) && !known.has(key)) unknown.push(`${path}/${key}`);
      else walk(child, `${path}/${key}`);
    }
  };
  walk(obj, '');
  return unknown;
}
