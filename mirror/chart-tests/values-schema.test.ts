// values.schema.json against values.yaml without helm: the schema is closed everywhere, it
// describes exactly the keys values.yaml has, and the shipped values files pass it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { CHART_DIR } from './helm.js';

/** The subset of JSON Schema the chart's schema uses. */
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: unknown[];
  pattern?: string;
  required?: string[];
}

const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Schema;
const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;

// Objects whose inner structure is Kubernetes' (checked by the API server and by the render tests)
// or Helm's: `global` is passed down by parent charts, affinity terms are deep Kubernetes types.
const OPEN_OBJECTS = new Set([
  '/global',
  '/affinity/nodeAffinity',
  '/affinity/podAffinity',
  '/affinity/podAntiAffinity',
]);

function isObjectSchema(s: Schema): boolean {
  return s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));
}

/** Paths of object schemas that accept keys they do not describe. */
function openObjects(s: Schema, path: string, out: string[]): string[] {
  if (isObjectSchema(s) && !OPEN_OBJECTS.has(path)) {
    const extra = s.additionalProperties;
    // A map of strings (labels, annotations) is closed to anything but strings; that is the intent.
    const closed = extra === false || (typeof extra === 'object' && extra.type === 'string' && !s.properties);
    if (!closed) out.push(path || '/');
  }
  for (const [key, child] of Object.entries(s.properties ?? {})) openObjects(child, `${path}/${key}`, out);
  if (s.items) openObjects(s.items, `${path}/[]`, out);
  return out;
}

/** Leaf paths of the described keys: objects with properties are descended into. */
function schemaKeys(s: Schema, path: string, out: Set<string>): Set<string> {
  for (const [key, child] of Object.entries(s.properties ?? {})) {
    const p = `${path}/${key}`;
    out.add(p);
    schemaKeys(child, p, out);
  }
  return out;
}

function valueKeys(v: unknown, path: string, out: Set<string>): Set<string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return out;
  for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
    const p = `${path}/${key}`;
    out.add(p);
    valueKeys(child, p, out);
  }
  return out;
}

/** Maps in values.yaml whose keys are user data (labels, selectors), not schema properties. */
const FREE_MAPS = [
  '/nodeSelector/',
  '/grafanaDashboard/labels/',
  '/grafanaDashboard/instanceSelector/matchLabels/',
  '/resources/',
];

describe('values.schema.json', () => {
  it('sets additionalProperties: false on every object (maps of strings aside)', () => {
    assert.deepEqual(openObjects(schema, '', []), []);
  });

  it('gives every property a type or an enum', () => {
    const untyped: string[] = [];
    const walk = (s: Schema, path: string) => {
      if (path !== '' && s.type === undefined && s.enum === undefined) untyped.push(path);
      for (const [key, child] of Object.entries(s.properties ?? {})) walk(child, `${path}/${key}`);
      if (s.items) walk(s.items, `${path}/[]`);
    };
    walk(schema, '');
    assert.deepEqual(untyped, []);
  });

  it('describes exactly the keys of values.yaml', () => {
    const inSchema = schemaKeys(schema, '', new Set());
    const inValues = valueKeys(values, '', new Set());
    const isFree = (p: string) =>
      FREE_MAPS.some((prefix) => p.startsWith(prefix) && p !== prefix.slice(0, -1));
    const missingFromSchema = [...inValues].filter((p) => !isFree(p) && !inSchema.has(p));
    const missingFromValues = [...inSchema].filter(
      (p) => !inValues.has(p) && !p.startsWith('/global') && !isOptionalKubernetesField(p),
    );
    assert.deepEqual(missingFromSchema, []);
    assert.deepEqual(missingFromValues, []);
  });

  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  const files: readonly [string, string][] = [
    ['values.yaml', join(CHART_DIR, 'values.yaml')],
    ['ci/talos-values.yaml', join(CHART_DIR, 'ci/talos-values.yaml')],
    [
      'chart-tests/fixtures/everything-values.yaml',
      new URL('./fixtures/everything-values.yaml', import.meta.url).pathname,
    ],
  ];
  for (const [name, file] of files) {
    it(`accepts ${name} merged over the defaults`, () => {
      const overlay = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const merged = deepMerge(values, overlay);
      assert.equal(validate(merged), true, JSON.stringify(validate.errors));
    });
  }

  it('rejects an unknown key and a wrong type with the path in the error', () => {
    assert.equal(validate(deepMerge(values, { peili: { lookupTimeout: 20, colour: 'red' } })), false);
    assert.deepEqual((validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).sort(), [
      '/peili must NOT have additional properties',
      '/peili/lookupTimeout must be string',
    ]);
  });
});

/** Kubernetes-typed fields the schema allows but values.yaml leaves unset by default. */
function isOptionalKubernetesField(path: string): boolean {
  return [
    '/imagePullSecrets/',
    '/tolerations/',
    '/affinity/',
    '/resources/requests/',
    '/resources/limits/',
    '/updateStrategy/rollingUpdate/maxSurge',
    '/serviceMonitor/relabelings/',
    '/grafanaDashboard/instanceSelector/matchExpressions',
  ].some((prefix) => path.startsWith(prefix));
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (
    base === null ||
    typeof base !== 'object' ||
    Array.isArray(base) ||
    over === null ||
    typeof over !== 'object' ||
    Array.isArray(over)
  ) {
    return over === undefined ? base : over;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over as Record<string, unknown>))
    out[key] = deepMerge(out[key], value);
  return out;
}
