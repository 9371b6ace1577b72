// One lint config for both parts. The import rules below hold the architecture's lines: the module
// table of docs/architecture.md (which folder of mirror/src may import which), fastify and grpc-js
// at the edges only, no I/O in oci/, and no test support in the daemon.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * docs/architecture.md's module table. `imports`: folders of mirror/src a module may import;
 * `types`: folders it may import types from only (`import type`). Unlisted folders, and the
 * top-level files (config.ts, main.ts, cli.ts), are off limits. http/ and the top-level files, the
 * edge and the composition root, may import everything.
 */
export const MODULES = {
  oci: { imports: [] },
  store: { imports: ['oci'] },
  containerd: { imports: ['store', 'oci'] },
  registry: { imports: ['store', 'oci', 'clock', 'peer-transport'], types: ['routing', 'metrics'] },
  routing: { imports: ['store', 'oci', 'clock', 'peer-transport'], types: ['metrics'] },
  hosts: { imports: ['oci'] },
  'peer-auth': { imports: ['peer-transport'] },
  'peer-tls': { imports: ['peer-transport'] },
  access: { imports: ['store', 'oci'] },
  metrics: { imports: [] },
  clock: { imports: [] },
  'peer-transport': { imports: ['clock'] },
};
const FOLDERS = [...Object.keys(MODULES), 'http'];

/** Packages that belong to one edge: where they may be imported, and what to say elsewhere. */
const EDGE_PACKAGES = [
  {
    group: ['fastify', 'fastify/*', '@fastify/*'],
    allowedIn: ['http', 'routing/peer-server.ts'],
    message: 'fastify stays at the edge: mirror/src/http/ (and the peer server, routing/peer-server.ts).',
  },
  {
    group: ['@grpc/*'],
    allowedIn: ['containerd'],
    message: 'grpc-js stays in the containerd adapter: mirror/src/containerd/.',
  },
  {
    group: ['prom-client'],
    allowedIn: ['metrics', 'http'],
    message: 'Metrics are created in mirror/src/metrics/; other modules take the Metrics object.',
    allowTypeImports: true,
  },
];

// oci/ is pure: no module that opens files, sockets or processes (node:net only for isIP*).
const IO_MODULES = ['fs', 'fs/promises', 'http', 'https', 'http2', 'tls', 'dgram', 'dns', 'dns/promises']
  .concat(['child_process', 'worker_threads', 'stream', 'stream/promises', 'cluster'])
  .flatMap((name) => [name, `node:${name}`])
  .map((name) => ({ name, message: 'oci/ is pure: no I/O.' }))
  .concat(
    ['net', 'node:net'].map((name) => ({
      name,
      allowImportNames: ['isIP', 'isIPv4', 'isIPv6'],
      message: 'oci/ is pure: no I/O (isIP* only).',
    })),
  );

const NO_TEST_SUPPORT = {
  group: ['**/test-support/**', '**/bench/**', '**/testbed/**'],
  message: 'Test and benchmark code never enters the daemon (the image compiles mirror/src only).',
};

/** The restricted-import patterns of a file of mirror/src in `folder` (undefined: top level). */
function patternsFor(folder, file) {
  const patterns = [NO_TEST_SUPPORT];
  const rule = MODULES[folder];
  if (rule) {
    const forbidden = FOLDERS.filter((f) => f !== folder && !rule.imports.includes(f));
    const typesOnly = forbidden.filter((f) => rule.types?.includes(f));
    const never = forbidden.filter((f) => !rule.types?.includes(f));
    const allowed = [...rule.imports, ...(rule.types ?? []).map((t) => `${t} (types only)`)];
    const table = `docs/architecture.md: ${folder}/ may import ${allowed.join(', ') || 'no other module'}`;
    patterns.push({ group: never.map((f) => `../${f}/*`).concat('../*.js'), message: table });
    if (typesOnly.length > 0)
      patterns.push({ group: typesOnly.map((f) => `../${f}/*`), message: table, allowTypeImports: true });
  }
  // The top-level files (composition root, CLI, config) may use every edge package.
  for (const { allowedIn, ...pattern } of folder === undefined ? [] : EDGE_PACKAGES) {
    const here = file ? `${folder}/${file}` : folder;
    if (!allowedIn.some((place) => place === folder || place === here)) patterns.push(pattern);
  }
  return patterns;
}

/** One config block per folder (and one for its exceptional files), daemon code only. */
function moduleRules() {
  const noTests = ['**/*.test.ts'];
  const rule = (patterns) => ({ '@typescript-eslint/no-restricted-imports': ['error', { patterns }] });
  const blocks = [{ files: ['mirror/src/*.ts'], ignores: noTests, rules: rule(patternsFor(undefined)) }];
  for (const folder of FOLDERS) {
    const exceptional = EDGE_PACKAGES.flatMap((p) => p.allowedIn).filter((place) =>
      place.startsWith(`${folder}/`),
    );
    blocks.push({
      files: [`mirror/src/${folder}/**/*.ts`],
      ignores: [...noTests, ...exceptional.map((place) => `mirror/src/${place}`)],
      rules: rule(patternsFor(folder)),
    });
    for (const place of exceptional) {
      blocks.push({
        files: [`mirror/src/${place}`],
        rules: rule(patternsFor(folder, place.slice(folder.length + 1))),
      });
    }
  }
  blocks.push({
    files: ['mirror/src/oci/**/*.ts'],
    ignores: noTests,
    rules: {
      'no-restricted-imports': ['error', { paths: IO_MODULES }],
    },
  });
  return blocks;
}

export default tseslint.config(
  { ignores: ['node_modules/**', '**/node_modules/**', 'dist/**', '.testbed/**', '.render/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  ...moduleRules(),
);
