// A small model of how Talos applies patches to a machine configuration, for tests and review:
// the `v1alpha1` document (the one without `kind`) is strategically merged (maps by key, lists
// appended, scalars replaced); a document with `kind` is added, or replaces the one with the same
// kind and name. It models the cases Peili's parts and ordinary user patches use, not every
// special merge rule Talos has.
import { parseAllDocuments } from 'yaml';

type Doc = Record<string, unknown>;

function isMap(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: unknown, patch: unknown): unknown {
  if (isMap(base) && isMap(patch)) {
    const out: Doc = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) return [...(base as unknown[]), ...(patch as unknown[])];
  return patch;
}

/** Parses a multi-document config or patch. */
export function parseConfig(text: string): Doc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter(isMap);
}

/** Applies `patches` (each possibly multi-document) to `config`; returns the documents. */
export function applyPatches(config: string, patches: readonly string[]): Doc[] {
  let docs = parseConfig(config);
  for (const patch of patches) {
    for (const p of parseConfig(patch)) {
      if (p.kind === undefined) {
        const i = docs.findIndex((d) => d.kind === undefined);
        if (i < 0) docs = [p, ...docs];
        else docs[i] = merge(docs[i], p) as Doc;
      } else {
        docs = [...docs.filter((d) => !(d.kind === p.kind && d.name === p.name)), p];
      }
    }
  }
  return docs;
}

/** Every leaf of the documents as `path = value` lines (documents keyed by kind/name), sorted. */
export function flatten(docs: readonly Doc[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (isMap(v)) for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else out.push(`${path} = ${JSON.stringify(v)}`);
  };
  for (const d of docs) walk(d, d.kind === undefined ? 'v1alpha1' : `${String(d.kind)}/${String(d.name)}`);
  return out.sort();
}
