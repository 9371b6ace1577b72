// Validation of the Kubernetes objects the program creates, beyond what Pulumi checks:
// the kubernetes-models schemas (types, enums, required fields), the field names themselves
// (the schemas accept unknown fields, so the TypeScript model interfaces judge them), and rules
// no schema states (a HelmRelease has exactly one chart source).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { KubeObject } from './rendered.js';

/** How to find the model of an apiVersion/kind. */
interface ModelRef {
  /** Module exporting the class and its `I<Kind>` interface. */
  readonly module: string;
  readonly kind: string;
}

/** The models of every apiVersion/kind the program may create. */
export const MODELS: Readonly<Record<string, ModelRef>> = {
  'v1/Namespace': { module: 'kubernetes-models/v1', kind: 'Namespace' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1', kind: 'ConfigMap' },
  'apps/v1/DaemonSet': { module: 'kubernetes-models/apps/v1', kind: 'DaemonSet' },
  'helm.toolkit.fluxcd.io/v2/HelmRelease': {
    module: '@kubernetes-models/flux-cd/helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
  },
  'source.toolkit.fluxcd.io/v1/OCIRepository': {
    module: '@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1',
    kind: 'OCIRepository',
  },
  'kustomize.toolkit.fluxcd.io/v1/Kustomization': {
    module: '@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
  },
};

function modelRef(obj: KubeObject): ModelRef {
  const ref = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!ref) throw new Error(`no model for ${obj.apiVersion} ${obj.kind}`);
  return ref;
}

interface Validatable {
  validate(): void;
}

/** Validates `obj` against its kubernetes-models schema; throws the schema's error. */
export async function validateSchema(obj: KubeObject): Promise<void> {
  const ref = modelRef(obj);
  const mod = (await import(ref.module)) as Record<string, new (data: unknown) => Validatable>;
  const Model = mod[ref.kind];
  if (!Model) throw new Error(`${ref.module} has no ${ref.kind}`);
  new Model(obj).validate();
}

/** Rules the HelmRelease schema does not state; returns the problems found. */
export function helmReleaseRules(obj: KubeObject): string[] {
  if (obj.kind !== 'HelmRelease') return [];
  const spec = (obj.spec ?? {}) as Record<string, unknown>;
  const sources = ['chart', 'chartRef'].filter((k) => spec[k] !== undefined);
  return sources.length === 1
    ? []
    : [`HelmRelease ${obj.metadata.name}: needs exactly one of chart/chartRef (has ${sources.length})`];
}

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Unknown or mistyped fields, judged by the TypeScript interfaces of the models: every object
 * becomes a typed object literal in a virtual file, and the compiler's excess-property check does
 * the rest at any depth. Free-form fields (HelmRelease values) are typed as open objects there.
 */
export function fieldErrors(objects: readonly KubeObject[]): string[] {
  const imports = new Map<string, Set<string>>();
  const decls: string[] = [];
  objects.forEach((obj, i) => {
    const ref = modelRef(obj);
    const names = imports.get(ref.module) ?? new Set<string>();
    names.add(`I${ref.kind}`);
    imports.set(ref.module, names);
    decls.push(`export const o${i}: I${ref.kind} = ${JSON.stringify(obj, null, 2)};`);
  });
  const header = [...imports]
    .map(([m, names]) => `import type { ${[...names].join(', ')} } from '${m}';`)
    .join('\n');
  const text = `${header}\n${decls.join('\n')}\n`;
  const file = join(HERE, '__field_check__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? text : readFile(name));
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file);
  const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
  // Map each diagnostic back to the object whose literal holds it.
  const starts = decls.map((d) => text.indexOf(d));
  return diagnostics.map((d) => {
    const index = starts.findLastIndex((s) => s <= (d.start ?? 0));
    const obj = objects[index];
    const where = obj ? `${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}` : 'imports';
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
