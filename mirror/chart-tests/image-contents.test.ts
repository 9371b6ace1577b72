// The image ships what the daemon runs and nothing else: `npm run build` (tsconfig.build.json,
// which the Dockerfile uses) must compile no test code. tsc follows imports out of `include`, so a
// production module importing a fake from mirror/test-support/ would drag it into dist/: this asks
// the TypeScript compiler itself which files the build compiles, without emitting them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { compiledSources } from './compiled-sources.js';
import { REPO_ROOT } from './helm.js';

/** Module specifiers a source file imports, static and dynamic. */
function importsOf(path: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(REPO_ROOT, path), 'utf8'), true, true);
  return info.importedFiles.map((file) => file.fileName);
}

/** Files reachable from `entry` through relative imports, among `files`. */
function reachableFrom(entry: string, files: ReadonlySet<string>): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const path = todo.pop()!;
    if (seen.has(path) || !files.has(path)) continue;
    seen.add(path);
    for (const specifier of importsOf(path)) {
      if (!specifier.startsWith('.')) continue;
      todo.push(relative(REPO_ROOT, resolve(REPO_ROOT, dirname(path), specifier)).replace(/\.js$/, '.ts'));
    }
  }
  return seen;
}

/** Tells test code by its marks: a test file name, the test-support folder, the test runner. */
export function testCodeMarks(path: string): string[] {
  const marks: string[] = [];
  if (/\.test\.ts$/.test(path)) marks.push('a test file');
  if (/(^|\/)test-support\//.test(path)) marks.push('under test-support/');
  if (/(^|\/)bench\//.test(path)) marks.push('under bench/');
  for (const specifier of importsOf(path)) {
    if (/^node:(test|assert)(\/|$)/.test(specifier)) marks.push(`imports ${specifier}`);
  }
  return marks;
}

// Compiled but not loaded by the CLI. Each entry says why it may stay; none may be test code.
const NOT_LOADED_BY_CLI = new Map([
  // Unused (hosts/containerd-version.ts is the copy configure uses); its removal belongs to the
  // owner of mirror/src/containerd/ (issue 12).
  ['mirror/src/containerd/version.ts', 'dead code, removal pending'],
]);

describe('the daemon build (tsconfig.build.json, as the image compiles it)', () => {
  const sources = compiledSources(join(REPO_ROOT, 'tsconfig.build.json'));

  it('compiles only mirror/src, and no test code', () => {
    assert.ok(sources.includes('mirror/src/cli.ts'));
    assert.deepEqual(
      sources.filter((path) => !path.startsWith('mirror/src/')),
      [],
      'files outside mirror/src are compiled into the image',
    );
    assert.deepEqual(
      sources.flatMap((path) => testCodeMarks(path).map((mark) => `${path}: ${mark}`)),
      [],
    );
  });

  it('compiles only what the CLI loads', () => {
    const reachable = reachableFrom('mirror/src/cli.ts', new Set(sources));
    assert.deepEqual(
      sources.filter((path) => !reachable.has(path) && !NOT_LOADED_BY_CLI.has(path)),
      [],
      'compiled into the image but never loaded by the CLI: test support belongs in mirror/test-support/, benchmarks in bench/',
    );
  });

  it('tells test code from daemon code', () => {
    assert.deepEqual(testCodeMarks('mirror/src/config.test.ts'), [
      'a test file',
      'imports node:assert/strict',
      'imports node:test',
    ]);
    assert.deepEqual(testCodeMarks('mirror/test-support/router-conformance.ts'), [
      'under test-support/',
      'imports node:assert/strict',
      'imports node:test',
    ]);
    assert.deepEqual(testCodeMarks('mirror/src/config.ts'), []);
  });
});
