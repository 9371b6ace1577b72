// Finds the test files and hands them to Node's test runner (through tsx), so the runner's own
// summary shows what ran. Node 20's --test takes no globs, hence the walk here.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOTS = ['mirror', 'infra', 'testbed', 'e2e', 'scripts', 'bench', 'demo'];
const SKIP_DIRS = new Set(['node_modules', 'dist', '.testbed', 'chart']);

function findTests(dir: string, out: string[]): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) findTests(path, out);
    } else if (entry.name.endsWith('.test.ts')) {
      out.push(path);
    }
  }
  return out;
}

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const integrationOnly = args.includes('--integration');
const filters = args.filter((a) => !a.startsWith('--'));

let files = ROOTS.flatMap((root) => findTests(root, [])).sort();
if (unitOnly) files = files.filter((f) => !f.endsWith('.int.test.ts'));
if (integrationOnly) files = files.filter((f) => f.endsWith('.int.test.ts'));
if (filters.length > 0) files = files.filter((f) => filters.some((needle) => f.includes(needle)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

// Integration tests each start their own containerd daemons and registry; on a 2-core machine
// two files at a time keeps them from starving each other's timeouts.
const concurrency = process.env.PEILI_TEST_CONCURRENCY ?? (unitOnly ? '4' : '2');
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
