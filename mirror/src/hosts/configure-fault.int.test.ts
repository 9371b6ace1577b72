// configure and cleanup where the config path cannot take writes: a read-only mount and a full
// disk (a 64 KiB tmpfs). Each must fail with an error naming the cause, leave what containerd reads
// consistent with the original files intact, and converge once space or write access is back.
// Needs root (mount); the test bed runs as root.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cleanup } from './cleanup.js';
import { configure } from './configure.js';
import {
  assertConsistent,
  createCrashBed,
  liveOnly,
  snapshotTree,
} from '../../test-support/hosts-fixtures.js';

const run = promisify(execFile);
const scratch = await mkdtemp(join(tmpdir(), 'peili-disk-fault-'));
const mounts: string[] = [];
after(async () => {
  for (const point of mounts.reverse()) await run('umount', ['-l', point]).catch(() => undefined);
  await rm(scratch, { recursive: true, force: true });
});

/** Mounts a fresh tmpfs of `size` at `<scratch>/<name>` and returns the mount point. */
async function tmpfs(name: string, size: string): Promise<string> {
  const point = join(scratch, name);
  await mkdir(point, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', point]);
  mounts.push(point);
  return point;
}

describe('configure where the disk refuses writes', { timeout: 120_000 }, () => {
  it('read-only mount: clear EROFS error, files untouched, works once writable', async () => {
    const point = await tmpfs('ro', '1m');
    const bed = createCrashBed(join(point, 'node'));
    await bed.fresh();
    const original = await snapshotTree(bed.root, { withTimes: true });
    await run('mount', ['-o', 'remount,ro', point]);
    await assert.rejects(configure({ ...bed.options, durable: false }), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EROFS');
      assert.match(error.message, /^EROFS: read-only file system, access '.*\/node\/certs\.d'$/);
      return true;
    });
    assert.deepEqual(await snapshotTree(bed.root, { withTimes: true }), original);
    await run('mount', ['-o', 'remount,rw', point]);
    await configure({ ...bed.options, durable: false });
    await cleanup({ configPath: bed.root });
    assert.deepEqual(await snapshotTree(bed.root, { withTimes: true }), original);
  });

  it('disk full: clear ENOSPC error, what containerd reads is consistent, originals kept', async () => {
    const point = await tmpfs('full', '256k');
    const bed = createCrashBed(join(point, 'node'));
    await bed.fresh();
    const original = await snapshotTree(bed.root, { withTimes: true });
    // Fill every free byte: the first write configure makes fails.
    const filler = join(point, 'filler');
    await writeFile(filler, Buffer.alloc(1024 * 1024)).catch((error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'ENOSPC');
    });
    await assert.rejects(configure({ ...bed.options, durable: false }), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'ENOSPC');
      assert.match(error.message, /^ENOSPC: no space left on device/);
      return true;
    });
    assertConsistent(await snapshotTree(bed.root, { exclude: liveOnly }), original, bed.root, 'after ENOSPC');
    for (const [rel, entry] of Object.entries(original)) {
      if (entry.kind !== 'file') continue;
      const live = await snapshotTree(bed.root);
      // Every original file is still there byte for byte, in place or in the backup.
      const kept = live[rel]?.content === entry.content || live[`_backup/${rel}`]?.content === entry.content;
      assert.ok(kept, `${rel} lost after ENOSPC`);
    }
    await rm(filler);
    await configure({ ...bed.options, durable: false });
    await cleanup({ configPath: bed.root });
    assert.deepEqual(await snapshotTree(bed.root, { withTimes: true }), original);
  });
});
