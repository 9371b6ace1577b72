// Compiles the daemon the way its image does (`tsc -p tsconfig.build.json`) into a scratch folder,
// so the benchmarks measure the JavaScript that ships rather than TypeScript compiled on load.
import { execFile } from 'node:child_process';
import { cp, access } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../testbed/index.js';

const run = promisify(execFile);

/** Builds into `outDir` and returns the path of the compiled `cli.js`. */
export async function buildDaemon(outDir: string): Promise<string> {
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    // Type errors still emit JavaScript (noEmitOnError is off); only a missing output is fatal.
    const stdout = (error as { stdout?: string }).stdout ?? '';
    if (stdout) console.error(`bench: tsc reported errors (output still used):\n${stdout.slice(0, 2000)}`);
  }
  const cli = join(outDir, 'mirror', 'src', 'cli.js');
  await access(cli);
  // tsc copies no .proto files; the compiled store looks for them beside itself first.
  await cp(
    join(REPO_ROOT, 'mirror', 'src', 'containerd', 'proto'),
    join(outDir, 'mirror', 'src', 'containerd', 'proto'),
    {
      recursive: true,
    },
  );
  return cli;
}
