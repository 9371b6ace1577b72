import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { liveProcessCount, reapOrphans, startProcess, waitFor } from './process.js';

// The children are Node itself, so this needs no external binary.
const node = process.execPath;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peili-process-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('startProcess', () => {
  it('appends output to the log across restarts and reports the real pid', async () => {
    const logPath = join(dir, 'append.log');
    for (const word of ['first', 'second']) {
      const child = await startProcess(node, ['-e', `console.log('${word}', process.pid)`], { logPath });
      const status = await child.exited;
      assert.deepEqual(status, { code: 0, signal: null });
      const log = await readFile(logPath, 'utf8');
      assert.match(log, new RegExp(`^${word} ${child.pid}$`, 'm'));
    }
    const lines = (await readFile(logPath, 'utf8'))
      .split('\n')
      .filter((l) => !l.startsWith('--- testbed: start'));
    assert.deepEqual(
      lines.slice(0, 1).map((l) => l.split(' ')[0]),
      ['first'],
    );
  });

  it('stops a child with SIGTERM', async () => {
    const child = await startProcess(node, ['-e', 'setInterval(() => {}, 1000)'], {
      logPath: join(dir, 'term.log'),
    });
    assert.equal(child.running(), true);
    const before = liveProcessCount();
    assert.deepEqual(await child.stop(), { code: null, signal: 'SIGTERM' });
    assert.equal(child.running(), false);
    assert.equal(liveProcessCount(), before - 1);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const logPath = join(dir, 'kill.log');
    const child = await startProcess(
      node,
      ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
      { logPath },
    );
    await waitFor(async () => /^ready$/m.test(await readFile(logPath, 'utf8')), {
      timeoutMs: 5000,
      describe: () => 'child not ready',
    });
    const started = Date.now();
    assert.deepEqual(await child.stop({ timeoutMs: 200 }), { code: null, signal: 'SIGKILL' });
    assert.ok(Date.now() - started < 2000);
  });

  it('rejects a program that does not exist', async () => {
    await assert.rejects(startProcess('/nonexistent/peili-prog', [], { logPath: join(dir, 'missing.log') }), {
      message: 'cannot start /nonexistent/peili-prog: spawn /nonexistent/peili-prog ENOENT',
    });
  });
});

describe('waitFor', () => {
  it('throws the described message after the timeout', async () => {
    await assert.rejects(
      waitFor(async () => false, { timeoutMs: 50, intervalMs: 10, describe: () => 'never ready' }),
      { message: 'never ready' },
    );
  });
});

describe('reapOrphans', () => {
  it('signals only children of dead owners that still run the recorded command line', async () => {
    const pids = join(dir, 'pids');
    await mkdir(pids);
    const owner = spawn(node, ['-e', '0']);
    await once(owner, 'exit');
    const deadOwner = owner.pid!;
    const argv = [node, '-e', 'setInterval(() => {}, 1000)'];
    const orphan = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    const kept = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    const orphanExit = once(orphan, 'exit');
    const spawned = Promise.all([once(orphan, 'spawn'), once(kept, 'spawn')]);
    try {
      await spawned;
      const record = (pid: number, ownerPid: number, args: string[]): string =>
        JSON.stringify({ pid, owner: ownerPid, argv: args });
      await writeFile(join(pids, 'orphan.json'), record(orphan.pid!, deadOwner, argv));
      await writeFile(
        join(pids, 'reused.json'),
        record(kept.pid!, deadOwner, [node, '-e', 'something else']),
      );
      await writeFile(join(pids, 'owned.json'), record(kept.pid!, process.pid, argv));
      assert.deepEqual(reapOrphans(pids), [orphan.pid]);
      assert.deepEqual(await orphanExit, [null, 'SIGTERM']);
      assert.equal(kept.exitCode, null);
      assert.deepEqual(await readdir(pids), ['owned.json']);
    } finally {
      orphan.kill('SIGKILL');
      kept.kill('SIGKILL');
    }
  });
});
