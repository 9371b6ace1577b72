// Crash safety of configure and cleanup: interrupt them before every filesystem change (the step
// hook throws and nothing after it runs, as in a crash), then check that containerd would see a
// consistent configuration and that running again converges, with cleanup still restoring the
// original bytes. crash.int.test.ts does the same with real SIGKILLed child processes.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup } from './cleanup.js';
import { configure } from './configure.js';
import {
  assertConsistent,
  createCrashBed,
  liveOnly,
  snapshotTree,
} from '../../test-support/hosts-fixtures.js';

const scratch = await mkdtemp(join(tmpdir(), 'peili-crash-'));
after(() => rm(scratch, { recursive: true, force: true }));
const bed = createCrashBed(join(scratch, 'node'));
const { root } = bed;
// No fsync here: a process crash does not lose written data, and this file makes ~400 runs.
const configureOptions = { ...bed.options, durable: false };

class Crash extends Error {}

/** Runs `op` in-process and throws at step `at` (0-based). */
async function crashInProcess(op: 'configure' | 'cleanup', at: number): Promise<void> {
  let seen = 0;
  const onStep = (): void => {
    if (seen++ === at) throw new Crash();
  };
  const run =
    op === 'configure'
      ? configure({ ...configureOptions, onStep })
      : cleanup({ configPath: root, onStep, durable: false });
  await assert.rejects(run, Crash);
}

describe('crash safety', { timeout: 600_000 }, () => {
  it('configure interrupted at every step', async () => {
    await bed.fresh();
    const original = await snapshotTree(root, { withTimes: true });
    const steps = await bed.recordSteps('configure');
    const configured = await snapshotTree(root);
    assert.ok(steps.length > 30, `only ${steps.length} steps`);
    assert.ok(steps.includes('rename _backup'), steps.join('\n'));
    for (let at = 0; at < steps.length; at++) {
      const where = `configure crashed before step ${at} (${steps[at]})`;
      await bed.fresh();
      await crashInProcess('configure', at);
      assertConsistent(await snapshotTree(root, { exclude: liveOnly }), original, root, where);
      await configure(configureOptions);
      assert.deepEqual(await snapshotTree(root), configured, where);
      await cleanup({ configPath: root, durable: false });
      assert.deepEqual(await snapshotTree(root, { withTimes: true }), original, where);
    }
  });

  it('cleanup interrupted at every step (then cleanup again, or configure then cleanup)', async () => {
    await bed.fresh();
    const original = await snapshotTree(root, { withTimes: true });
    await configure(configureOptions);
    const configured = await snapshotTree(root);
    const steps = await bed.recordSteps('cleanup');
    assert.ok(steps.length > 20, `only ${steps.length} steps`);
    for (let at = 0; at < steps.length; at++) {
      const where = `cleanup crashed before step ${at} (${steps[at]})`;
      await bed.fresh();
      await configure(configureOptions);
      await crashInProcess('cleanup', at);
      assertConsistent(await snapshotTree(root, { exclude: liveOnly }), original, root, where);
      if (at % 2 === 1) {
        // The node restarted the DaemonSet before the uninstall hook ran again.
        await configure(configureOptions);
        assert.deepEqual(await snapshotTree(root), configured, where);
      }
      await cleanup({ configPath: root, durable: false });
      assert.deepEqual(await snapshotTree(root, { withTimes: true }), original, where);
    }
  });
});
