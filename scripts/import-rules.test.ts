// The import rules of eslint.config.js are docs/architecture.md's module table, and they do fail
// on a violation: each case lints a small file placed in a module's folder (nothing is written).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const REPO_ROOT = new URL('../', import.meta.url);
// eslint.config.js is plain JavaScript (ESLint loads it before any TypeScript tooling).
const { MODULES } = (await import(new URL('eslint.config.js', REPO_ROOT).href)) as {
  MODULES: Record<string, { imports: string[]; types?: string[] }>;
};

/** The module table's "may import" cells: folder → [imports, types only]. */
async function documentedTable(): Promise<Map<string, { imports: string[]; types: string[] }>> {
  const text = await readFile(new URL('docs/architecture.md', REPO_ROOT), 'utf8');
  const folders = new Set([...Object.keys(MODULES), 'http']);
  const names = (cell: string) =>
    [...cell.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!).filter((n) => folders.has(n));
  const table = new Map<string, { imports: string[]; types: string[] }>();
  for (const match of text.matchAll(/^\| `([a-z-]+)\/` \| .* \| (.*) \|$/gm)) {
    const [imports = '', types = ''] = match[2]!.split('types only:');
    table.set(match[1]!, { imports: names(imports), types: names(types.split(';')[0] ?? '') });
  }
  return table;
}

describe('import rules', () => {
  it('the lint table is the documented one', async () => {
    const documented = await documentedTable();
    for (const [folder, rule] of Object.entries(MODULES)) {
      const types = rule.types ?? [];
      assert.deepEqual(documented.get(folder), { imports: rule.imports, types }, folder);
    }
    assert.deepEqual(
      [...documented.keys()].sort(),
      [...Object.keys(MODULES), 'http'].sort(),
      'every folder of the table has a rule',
    );
  });

  const eslint = new ESLint({ cwd: new URL('.', REPO_ROOT).pathname });
  const cases: [title: string, file: string, code: string, errors: number][] = [
    ['oci importing store', 'mirror/src/oci/probe.ts', "import { x } from '../store/content-store.js';", 1],
    [
      'access importing containerd',
      'mirror/src/access/probe.ts',
      "import { x } from '../containerd/labels.js';",
      1,
    ],
    [
      'access importing registry',
      'mirror/src/access/probe.ts',
      "import { x } from '../registry/upstream-probe.js';",
      1,
    ],
    [
      'registry importing metrics values',
      'mirror/src/registry/probe.ts',
      "import { x } from '../metrics/metrics.js';",
      1,
    ],
    [
      'registry importing metrics types',
      'mirror/src/registry/probe.ts',
      "import type { x } from '../metrics/metrics.js';",
      0,
    ],
    ['routing importing fastify', 'mirror/src/routing/probe.ts', "import fastify from 'fastify';", 1],
    [
      'the peer server importing fastify',
      'mirror/src/routing/peer-server.ts',
      "import fastify from 'fastify';",
      0,
    ],
    ['store importing grpc', 'mirror/src/store/probe.ts', "import { x } from '@grpc/grpc-js';", 1],
    ['oci reading files', 'mirror/src/oci/probe.ts', "import { readFile } from 'node:fs/promises';", 1],
    ['oci using isIP', 'mirror/src/oci/probe.ts', "import { isIP } from 'node:net';", 0],
    [
      'the daemon importing a fake',
      'mirror/src/main.ts',
      "import { x } from '../test-support/memory-store.js';",
      1,
    ],
    [
      'a test importing a fake',
      'mirror/src/http/probe.test.ts',
      "import { x } from '../../test-support/memory-store.js';",
      0,
    ],
    [
      'http importing registry',
      'mirror/src/http/probe.ts',
      "import { x } from '../registry/registry-service.js';",
      0,
    ],
  ];
  for (const [title, file, code, errors] of cases) {
    it(`${errors > 0 ? 'rejects' : 'allows'} ${title}`, async () => {
      const [result] = await eslint.lintText(`${code}\n`, { filePath: file });
      const restricted = result!.messages.filter((m) => /no-restricted-imports$/.test(m.ruleId ?? ''));
      assert.equal(restricted.length, errors, JSON.stringify(result!.messages));
    });
  }
});
