// Generates the values table of the chart README from the `# --` comments of values.yaml, between
// the README's `<!-- values:start -->` and `<!-- values:end -->` markers; the prose around it is
// hand-written. Run `npx tsx mirror/chart-tests/gen-readme.ts` after changing values.yaml; a test
// fails while the README is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** Marker lines that delimit the generated part of the README. */
export const VALUES_START =
  '<!-- values:start (generated from values.yaml by mirror/chart-tests/gen-readme.ts) -->';
/** End of the generated part. */
export const VALUES_END = '<!-- values:end -->';

/** One documented key of values.yaml. */
export interface ValueDoc {
  /** Dotted path, e.g. `peili.lookupTimeout`. */
  readonly key: string;
  readonly type: string;
  readonly default: unknown;
  readonly description: string;
}

const KEY_LINE = /^( *)([A-Za-z0-9_.-]+):(?: |$)/;

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  return typeof value;
}

function get(values: unknown, path: readonly string[]): unknown {
  let node = values;
  for (const key of path) node = (node as Record<string, unknown>)[key];
  return node;
}

function isLeaf(value: unknown): boolean {
  return (
    value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0
  );
}

/**
 * The documented keys of values.yaml, in file order. A key is documented by a `# -- ` comment
 * (continued by further `#` lines) right above it; it covers the key's whole value. Throws when a
 * leaf value is covered by no description, naming the key.
 */
export function documentedValues(text: string): ValueDoc[] {
  const values = parseYaml(text) as unknown;
  const docs: ValueDoc[] = [];
  const stack: { indent: number; key: string; documented: boolean }[] = [];
  let pending: string[] | undefined;
  for (const line of text.split('\n')) {
    const comment = /^ *# ?(.*)$/.exec(line);
    if (comment) {
      const body = comment[1] ?? '';
      if (body.startsWith('-- ')) pending = [body.slice(3).trim()];
      else if (pending) pending.push(body.trim());
      continue;
    }
    const match = KEY_LINE.exec(line);
    if (!match) {
      if (line.trim() === '') pending = undefined;
      continue;
    }
    const indent = match[1]?.length ?? 0;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    const key = match[2] ?? '';
    const path = [...stack.map((s) => s.key), key];
    const covered = stack.some((s) => s.documented);
    const value = get(values, path);
    if (pending) {
      docs.push({ key: path.join('.'), type: typeOf(value), default: value, description: pending.join(' ') });
    } else if (!covered && isLeaf(value)) {
      throw new Error(`values.yaml: ${path.join('.')} has no "# -- " description`);
    }
    stack.push({ indent, key, documented: pending !== undefined || covered });
    pending = undefined;
  }
  return docs;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The markdown table of the documented values. */
export function valuesTable(docs: readonly ValueDoc[]): string {
  const rows = docs.map(
    (d) => `| \`${d.key}\` | ${d.type} | \`${cell(JSON.stringify(d.default))}\` | ${cell(d.description)} |`,
  );
  return ['| Key | Type | Default | Description |', '|---|---|---|---|', ...rows].join('\n');
}

/** The README with its generated part replaced from `valuesText`. Throws when a marker is missing. */
export function syncReadme(readme: string, valuesText: string): string {
  const start = readme.indexOf(VALUES_START);
  const end = readme.indexOf(VALUES_END);
  if (start < 0 || end < start)
    throw new Error(`README.md: the markers ${VALUES_START} and ${VALUES_END} are missing`);
  return `${readme.slice(0, start + VALUES_START.length)}\n${valuesTable(documentedValues(valuesText))}\n${readme.slice(end)}`;
}

const chartDir = fileURLToPath(new URL('../chart/', import.meta.url));
/** Path of the chart README. */
export const README_PATH = join(chartDir, 'README.md');
/** Path of values.yaml. */
export const VALUES_PATH = join(chartDir, 'values.yaml');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const next = syncReadme(readFileSync(README_PATH, 'utf8'), readFileSync(VALUES_PATH, 'utf8'));
  writeFileSync(README_PATH, next);
  console.log(`wrote ${README_PATH}`);
}
