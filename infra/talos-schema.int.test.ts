// The Talos provider binding (infra/talos/) against the REAL provider schema: every invoke and
// resource input the program sends (recorded from a run of both stacks under mocks) must be a
// property the schema knows, with every required one present, down through object types such as
// MachineSecrets; and the apply modes must be the provider's. The schema is read at test time
// from the provider plugin the real-engines build puts in `${PEILI_CACHE_DIR:-~/.cache/peili}`
// (`pulumi package get-schema <plugin>`); it is never copied into the repository.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { loadStackConfig } from './config.js';
import { runUnderMocks, type RunResult } from './mock-engine.js';
import { createPeiliStack } from './program.js';
import { loadStackFile } from './stack-files.js';
import { APPLY_MODES, TALOS_PROVIDER_VERSION } from './talos/types.js';
import { mockConfig, validValues } from './test-fixtures.js';

const CACHE = process.env.PEILI_CACHE_DIR ?? join(homedir(), '.cache', 'peili');

/** `<cache>/<prefix><version>/bin/<binary>`, or the newest `<prefix>*` when the version differs. */
function findBinary(prefix: string, binary: string, version?: string): string | undefined {
  if (!existsSync(CACHE)) return undefined;
  const dirs = readdirSync(CACHE)
    .filter((d) => d.startsWith(prefix) && !d.startsWith('.'))
    .sort()
    .reverse();
  const ordered = version ? [`${prefix}${version}`, ...dirs] : dirs;
  for (const d of ordered) {
    const path = join(CACHE, d, 'bin', binary);
    if (existsSync(path)) return path;
  }
  return undefined;
}

const plugin = findBinary('pulumi-talos-', 'pulumi-resource-talos', TALOS_PROVIDER_VERSION);
const pulumiCli = findBinary('pulumi-', 'pulumi');
const missing =
  plugin === undefined
    ? `the Talos provider plugin is not built yet (${CACHE}/pulumi-talos-${TALOS_PROVIDER_VERSION}/bin/pulumi-resource-talos, from the real-engines build)`
    : pulumiCli === undefined
      ? `no pulumi CLI in ${CACHE}/pulumi-*/bin`
      : undefined;

interface SchemaProperty {
  type?: string;
  $ref?: string;
  items?: SchemaProperty;
  additionalProperties?: SchemaProperty;
  enum?: { value: unknown }[];
}
interface SchemaObject {
  properties?: Record<string, SchemaProperty>;
  inputProperties?: Record<string, SchemaProperty>;
  required?: string[];
  requiredInputs?: string[];
  inputs?: { properties?: Record<string, SchemaProperty>; required?: string[] };
  enum?: { value: unknown }[];
}
interface Schema {
  resources: Record<string, SchemaObject>;
  functions: Record<string, SchemaObject>;
  types: Record<string, SchemaObject>;
}

/** Problems of `value` against the schema `props`/`required`, at `path`. */
function check(
  schema: Schema,
  path: string,
  value: Record<string, unknown>,
  props: Record<string, SchemaProperty>,
  required: readonly string[],
): string[] {
  const problems: string[] = [];
  for (const key of required)
    if (value[key] === undefined) problems.push(`${path}.${key}: required by the schema, not sent`);
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || v === null) continue;
    const prop = props[key];
    if (!prop) {
      problems.push(`${path}.${key}: not in the schema (the bridge would drop it)`);
      continue;
    }
    problems.push(...checkValue(schema, `${path}.${key}`, v, prop));
  }
  return problems;
}

function checkValue(schema: Schema, path: string, v: unknown, prop: SchemaProperty): string[] {
  if (prop.$ref?.startsWith('#/types/')) {
    const type = schema.types[decodeURIComponent(prop.$ref.slice('#/types/'.length))];
    if (!type) return [`${path}: schema type ${prop.$ref} missing`];
    if (type.enum) {
      const allowed = type.enum.map((e) => e.value);
      return allowed.includes(v) ? [] : [`${path}: ${JSON.stringify(v)} not one of ${allowed.join(', ')}`];
    }
    if (typeof v !== 'object' || v === null) return [`${path}: expected an object`];
    return check(schema, path, v as Record<string, unknown>, type.properties ?? {}, type.required ?? []);
  }
  if (prop.type === 'array' && Array.isArray(v) && prop.items)
    return v.flatMap((x, i) => checkValue(schema, `${path}[${i}]`, x, prop.items as SchemaProperty));
  return [];
}

describe('Talos binding against the real provider schema', { skip: missing }, () => {
  let schema: Schema;
  const runs: RunResult[] = [];

  before(async () => {
    const { stdout } = await promisify(execFile)(
      pulumiCli as string,
      ['package', 'get-schema', plugin as string],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: 'true' },
      },
    );
    schema = JSON.parse(stdout) as Schema;
    runs.push(
      await runUnderMocks(() => createPeiliStack(loadStackConfig()), loadStackFile('infra'), {
        stack: 'infra',
      }),
    );
    const rolling = validValues();
    rolling.talos = { ...(rolling.talos as object), keepLayers: 'rolling-reboot', talosVersion: 'v1.14.0' };
    runs.push(await runUnderMocks(() => createPeiliStack(loadStackConfig()), mockConfig(rolling)));
  });

  it('every function input the program sends is in the schema, required ones present', () => {
    const problems: string[] = [];
    let calls = 0;
    for (const run of runs)
      for (const inv of run.invocations.filter((i) => i.token.startsWith('talos:'))) {
        calls += 1;
        const fn = schema.functions[inv.token];
        if (!fn) problems.push(`${inv.token}: not a function of the provider`);
        else
          problems.push(
            ...check(schema, inv.token, inv.inputs, fn.inputs?.properties ?? {}, fn.inputs?.required ?? []),
          );
      }
    assert.ok(calls > 0);
    assert.deepEqual(problems, []);
  });

  it('every resource input the program sends is in the schema, required ones present', () => {
    const problems: string[] = [];
    let resources = 0;
    for (const run of runs)
      for (const reg of run.registrations.filter((r) => r.type.startsWith('talos:'))) {
        resources += 1;
        const res = schema.resources[reg.type];
        if (!res) problems.push(`${reg.type}: not a resource of the provider`);
        else
          problems.push(
            ...check(schema, reg.name, reg.inputs, res.inputProperties ?? {}, res.requiredInputs ?? []),
          );
      }
    assert.ok(resources > 0);
    assert.deepEqual(problems, []);
  });

  it("offers exactly the provider's apply modes", () => {
    const apply = schema.resources['talos:machine/configurationApply:ConfigurationApply'];
    const prop = apply?.inputProperties?.applyMode;
    assert.ok(prop, 'applyMode input');
    const text = JSON.stringify(prop);
    for (const mode of APPLY_MODES) assert.ok(text.includes(mode), `${mode} in ${text}`);
    assert.equal(text.includes('"try"'), false);
  });
});
