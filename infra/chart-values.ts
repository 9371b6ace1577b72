// The chart values part of the stack config (`peili:values`), judged by the chart's own
// values.schema.json: one schema, one source. The stack never re-models a chart setting; it
// passes what the user wrote to the chart unchanged, plus the few keys the stack must decide
// (`STACK_OWNED_VALUES`). Validation merges the user's values over the chart's defaults first,
// as Helm does, so a partial object such as `image: {digest: …}` is judged as Helm will see it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parse } from 'yaml';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Chart values as a plain object. */
export type ChartValues = { [k: string]: Json };

const CHART_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'mirror', 'chart');

/** The chart's defaults (mirror/chart/values.yaml) of the chart version in this repository. */
export function chartDefaults(): ChartValues {
  return parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as ChartValues;
}

/** The chart's values.schema.json. */
export function chartSchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
}

function isMap(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's coalescing: maps merge key by key, anything else (lists included) replaces, null deletes. */
export function mergeValues(base: ChartValues, over: ChartValues): ChartValues {
  const out: ChartValues = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = mergeValues(out[k] as ChartValues, v);
    else out[k] = v;
  }
  return out;
}

/** One problem in the values, with its dotted path below `values`. */
export interface ValuesIssue {
  /** e.g. `peili.resolveTags`, or '' for the root. */
  readonly path: string;
  readonly message: string;
}

function describe(error: ErrorObject): ValuesIssue {
  const path = error.instancePath.split('/').slice(1).join('.');
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return {
        path: [path, String(params.additionalProperty)].filter(Boolean).join('.'),
        message: 'is not a value of the chart (mirror/chart/values.yaml)',
      };
    case 'enum':
      return { path, message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` };
    default:
      return { path, message: error.message ?? error.keyword };
  }
}

let compiled: ReturnType<Ajv['compile']> | undefined;

/** Checks user values (merged over the chart defaults) against the chart's schema. */
export function validateChartValues(values: ChartValues): ValuesIssue[] {
  compiled ??= new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }).compile(chartSchema());
  const merged = mergeValues(chartDefaults(), values);
  if (compiled(merged)) return [];
  const seen = new Set<string>();
  return (compiled.errors ?? []).map(describe).filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A value at a dotted path of `values`, else the chart default there. */
export function effectiveValue(values: ChartValues, path: string): Json | undefined {
  let v: Json | undefined = mergeValues(chartDefaults(), values);
  for (const part of path.split('.')) v = isMap(v) ? v[part] : undefined;
  return v;
}
