// `peili cleanup`: put containerd's registry config path back as it was before configure.
//
// 1. Copy every entry of `_backup/` back over the live tree (files by atomic rename, hosts.toml
//    last in each folder, modes, owners and times kept). The backup itself is not changed, so an
//    interrupted restore is simply done again.
// 2. Remove what Peili wrote and the backup does not hold (folders made for mirrored registries,
//    copied certs, temp files), each folder vanishing in one rename when nothing else is in it.
// 3. Rename `_backup/` to `_backup.removing/` (the point of no return: everything is restored),
//    then delete it. Without a backup only step 2 runs.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCompleteBackup, holdsForeign } from './configure.js';
import { FsSteps, lstatOrUndefined, orderedNames, type StepHook } from './fs-steps.js';
import {
  BACKUP_DIR,
  BACKUP_MARKER,
  BACKUP_PARTIAL_DIR,
  BACKUP_REMOVING_DIR,
  CERTS_DIR,
  HOSTS_FILE,
  RESERVED_NAMES,
  isPeiliHostsFile,
  isTempName,
} from './layout.js';

/** Inputs of `cleanup`. */
export interface CleanupOptions {
  /** containerd's registry config path. */
  readonly configPath: string;
  /** Called before every filesystem change (crash tests). */
  readonly onStep?: StepHook;
  /**
   * fsync every write and rename so the result survives a power loss. Tests may turn it off for
   * speed: ordering and atomicity (what a process crash tests) do not depend on it. @default true
   */
  readonly durable?: boolean;
  readonly signal?: AbortSignal;
}

/** What `cleanup` did. */
export interface CleanupResult {
  /** True when a backup was found and restored. */
  readonly restored: boolean;
  /** Top-level folders of Peili that were removed. */
  readonly removed: readonly string[];
}

/** Restores the backup made by `configure` and removes Peili's files (see the top of this file). */
export async function cleanup(options: CleanupOptions): Promise<CleanupResult> {
  const root = options.configPath;
  // stat, not lstat: the config path itself may be a symlink to the real folder.
  if (!(await stat(root).catch(() => undefined))?.isDirectory()) return { restored: false, removed: [] };
  const fs = new FsSteps(root, options.onStep, options.signal, options.durable ?? true);

  // configure never touches the originals before its backup is complete: a partial one is noise.
  await fs.remove(join(root, BACKUP_PARTIAL_DIR));
  const backup = join(root, BACKUP_DIR);
  const restored = (await lstatOrUndefined(backup)) !== undefined;
  if (restored) {
    await assertCompleteBackup(root);
    for (const name of orderedNames(await readdir(backup))) {
      if (name === BACKUP_MARKER) continue;
      await fs.copy(join(backup, name), join(root, name));
    }
  }

  const removed: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (RESERVED_NAMES.has(name)) continue;
    const path = join(root, name);
    if (isTempName(name)) {
      await fs.remove(path);
      continue;
    }
    if (!(await lstatOrUndefined(path))?.isDirectory()) continue;
    await fs.removeTempFiles(path);
    const backed = join(backup, name);
    const inBackup = restored && (await lstatOrUndefined(backed)) !== undefined;
    const peiliHosts = await isPeiliHostsFile(join(path, HOSTS_FILE));
    const certs = (await lstatOrUndefined(join(path, CERTS_DIR))) !== undefined;
    if (!peiliHosts && !certs) continue;
    if (!inBackup && !(await holdsForeign(path, undefined, true))) {
      await fs.discard(path);
      removed.push(name);
      continue;
    }
    // Restored originals (or someone else's files) share the folder: remove only ours.
    if (peiliHosts) await fs.remove(join(path, HOSTS_FILE));
    if (certs && !(inBackup && (await lstatOrUndefined(join(backed, CERTS_DIR)))))
      await fs.remove(join(path, CERTS_DIR));
    if (!inBackup && (await fs.removeIfEmpty(path))) removed.push(name);
  }

  if (restored) {
    await fs.syncDir(root);
    await fs.rename(backup, join(root, BACKUP_REMOVING_DIR));
  }
  await fs.remove(join(root, BACKUP_REMOVING_DIR));
  return { restored, removed };
}
