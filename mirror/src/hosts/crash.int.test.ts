// Crash safety with real process deaths: configure and cleanup run in a child process that
// SIGKILLs itself before a chosen filesystem change; the parent then checks what containerd would
// read and that running again converges. Each child costs a Node start (1-2 s on the shared test
// machine), so a spread of steps runs by default and every step with PEILI_TEST_CRASH_ALL=1;
// crash.test.ts interrupts every step in-process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cleanup } from './cleanup.js';
import { configure } from './configure.js';
import {
  assertConsistent,
  createCrashBed,
  liveOnly,
  snapshotTree,
} from '../../test-support/hosts-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const scratch = await mkdtemp(join(tmpdir(), 'peili-kill-'));
after(() => rm(scratch, { recursive: true, force: true }));
const bed = createCrashBed(join(scratch, 'node'));

/** Runs `op` in a child process that SIGKILLs itself before step `at` (0-based). */
async function crashInChild(op: 'configure' | 'cleanup', at: number): Promise<void> {
  const module = pathToFileURL(join(here, `${op}.ts`)).href;
  const script = `
    const { ${op} } = await import(${JSON.stringify(module)});
    const at = Number(process.env.PEILI_TEST_CRASH_AT);
    let seen = 0;
    const onStep = () => { if (seen++ === at) process.kill(process.pid, 'SIGKILL'); };
    await ${op}({ ...JSON.parse(process.env.PEILI_TEST_OPTIONS), onStep });
    console.log('finished without crashing');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, PEILI_TEST_CRASH_AT: String(at), PEILI_TEST_OPTIONS: JSON.stringify(bed.options) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  assert.equal(signal, 'SIGKILL', `child ${op} at step ${at} exited with ${code}: ${output}`);
  assert.equal(output, '');
}

function spread(count: number, want: number): number[] {
  if (process.env.PEILI_TEST_CRASH_ALL === '1') return [...Array(count).keys()];
  const picks = new Set<number>();
  for (let i = 0; i < want; i++) picks.add(Math.round((i * (count - 1)) / (want - 1)));
  return [...picks];
}

describe('crash safety with SIGKILL', { timeout: 900_000 }, () => {
  it('configure killed, then configure and cleanup again', async () => {
    await bed.fresh();
    const original = await snapshotTree(bed.root, { withTimes: true });
    const steps = await bed.recordSteps('configure');
    const configured = await snapshotTree(bed.root);
    for (const at of spread(steps.length, 6)) {
      const where = `configure killed before step ${at} (${steps[at]})`;
      await bed.fresh();
      await crashInChild('configure', at);
      assertConsistent(await snapshotTree(bed.root, { exclude: liveOnly }), original, bed.root, where);
      await configure(bed.options);
      assert.deepEqual(await snapshotTree(bed.root), configured, where);
      await cleanup({ configPath: bed.root });
      assert.deepEqual(await snapshotTree(bed.root, { withTimes: true }), original, where);
    }
  });

  it('cleanup killed, then cleanup again', async () => {
    await bed.fresh();
    const original = await snapshotTree(bed.root, { withTimes: true });
    await configure(bed.options);
    const steps = await bed.recordSteps('cleanup');
    for (const at of spread(steps.length, 5)) {
      const where = `cleanup killed before step ${at} (${steps[at]})`;
      await bed.fresh();
      await configure(bed.options);
      await crashInChild('cleanup', at);
      assertConsistent(await snapshotTree(bed.root, { exclude: liveOnly }), original, bed.root, where);
      await cleanup({ configPath: bed.root });
      assert.deepEqual(await snapshotTree(bed.root, { withTimes: true }), original, where);
    }
  });
});
