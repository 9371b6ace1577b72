// Every change configure and cleanup make to the filesystem goes through here, one named step at a
// time. Each step is either atomic (rename, unlink, rmdir, mkdir) or invisible until a rename makes
// it visible (temp files), so a crash between two steps leaves a state the next run can finish.
// The `step` hook runs before each change: the crash tests kill the process there.
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { HOSTS_FILE, TEMP_SUFFIX, isTempName } from './layout.js';

/** Called before every filesystem change with a description such as `rename docker.io/hosts.toml`. */
export type StepHook = (step: string) => void | Promise<void>;

/** Runs named filesystem changes under one root (step names are relative to it). */
export class FsSteps {
  constructor(
    /** The config path; step names are relative to it. */
    readonly root: string,
    private readonly hook: StepHook | undefined,
    private readonly signal: AbortSignal | undefined,
    /** fsync files and folders (survives power loss); a process crash is survived either way. */
    private readonly durable = true,
  ) {}

  /** fsyncs a folder's entries when durable. */
  async syncDir(path: string): Promise<void> {
    if (this.durable) await fsyncDir(path);
  }

  private async step(action: string, path: string): Promise<void> {
    this.signal?.throwIfAborted();
    await this.hook?.(`${action} ${relative(this.root, path) || '.'}`);
  }

  /** Creates a directory (and missing parents) with `mode`; no-op when it exists as a directory. */
  async mkdir(path: string, mode = 0o755): Promise<void> {
    const stat = await lstatOrUndefined(path);
    if (stat?.isDirectory()) return;
    await this.step('mkdir', path);
    await mkdir(path, { mode, recursive: true });
    await chmod(path, mode);
  }

  /** Writes `data` atomically: temp file in the same folder, fsync, rename over `path`. */
  async writeFile(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
    const temp = tempPath(path);
    await this.step('write', temp);
    const handle = await open(temp, 'w', mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      if (this.durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await this.step('rename', path);
    await rename(temp, path);
    await this.syncDir(dirname(path));
  }

  /** Copies one file, symlink or directory tree from `src` to `dst`, preserving modes, owners and times. */
  async copy(src: string, dst: string, skip?: (src: string) => Promise<boolean>): Promise<void> {
    if (skip && (await skip(src))) return;
    const stat = await lstat(src);
    const existing = await lstatOrUndefined(dst);
    if (existing && (existing.isDirectory() !== stat.isDirectory() || existing.isSymbolicLink())) {
      // A different kind of entry is in the way (a file where a folder was, or a link): replace it.
      await this.remove(dst);
    }
    if (stat.isDirectory()) {
      // Owner-only while filling it (a read-only folder could not take its children); final mode after.
      await this.mkdir(dst, 0o700);
      for (const name of orderedNames(await readdir(src)))
        await this.copy(join(src, name), join(dst, name), skip);
      await this.syncDir(dst);
      await applyMetadata(dst, stat);
    } else if (stat.isFile()) {
      const temp = tempPath(dst);
      await this.step('write', temp);
      const handle = await open(temp, 'w', stat.mode & 0o7777);
      try {
        await handle.writeFile(await readFile(src));
        if (this.durable) await handle.sync();
      } finally {
        await handle.close();
      }
      await applyMetadata(temp, stat);
      await this.step('rename', dst);
      await rename(temp, dst);
    } else if (stat.isSymbolicLink()) {
      const temp = tempPath(dst);
      await this.step('write', temp);
      await rm(temp, { force: true }); // an earlier crash of this same pid may have left it
      await symlink(await readlink(src), temp);
      await applyMetadata(temp, stat);
      await this.step('rename', dst);
      await rename(temp, dst);
    }
    // Sockets, FIFOs and devices have no place in a registry config path; they are not copied.
  }

  /** Renames `from` to `to` (atomic, same filesystem). */
  async rename(from: string, to: string): Promise<void> {
    await this.step('rename', to);
    await rename(from, to);
    await this.syncDir(dirname(to));
  }

  /** Removes a file, link or whole tree; no-op when absent. */
  async remove(path: string): Promise<void> {
    const stat = await lstatOrUndefined(path);
    if (!stat) return;
    await this.step('remove', path);
    if (stat.isDirectory()) await rm(path, { recursive: true, force: true });
    else await unlink(path);
  }

  /**
   * Removes a file or tree so that it disappears at once: renamed to a temporary name first (one
   * atomic step containerd sees), then deleted. A crash in between leaves only a temp name.
   */
  async discard(path: string): Promise<void> {
    if (!(await lstatOrUndefined(path))) return;
    const temp = tempPath(path);
    await this.rename(path, temp);
    await this.remove(temp);
  }

  /** Removes a directory if it is empty; returns whether it is gone. */
  async removeIfEmpty(path: string): Promise<boolean> {
    const names = await readdir(path).catch(() => undefined);
    if (names === undefined) return true;
    if (names.length > 0) return false;
    await this.step('rmdir', path);
    await rmdir(path);
    return true;
  }

  /** Removes every leftover temporary file below `path` (a crash between write and rename). */
  async removeTempFiles(path: string): Promise<void> {
    const stat = await lstatOrUndefined(path);
    if (!stat?.isDirectory()) return;
    for (const name of await readdir(path)) {
      const child = join(path, name);
      if (isTempName(name)) await this.remove(child);
      else await this.removeTempFiles(child);
    }
  }
}

/** lstat that answers undefined for a missing path. */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Flushes a directory's entries (renames, creations) to disk. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Sorted names with hosts.toml last, so a hosts.toml never appears before the files it references. */
export function orderedNames(names: readonly string[]): string[] {
  return [...names].sort(
    (a, b) => Number(a === HOSTS_FILE) - Number(b === HOSTS_FILE) || (a < b ? -1 : a > b ? 1 : 0),
  );
}

/** The temporary sibling of `path` used by atomic writes (recognised by its suffix). */
export function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}${TEMP_SUFFIX}`);
}

async function applyMetadata(path: string, stat: Stats): Promise<void> {
  // Owners can only be kept when running as root (the DaemonSet does); elsewhere they stay ours.
  // chown first: it clears setuid/setgid bits that chmod then puts back.
  await lchown(path, stat.uid, stat.gid).catch(() => undefined);
  if (!stat.isSymbolicLink()) await chmod(path, stat.mode & 0o7777);
  // Seconds as numbers keep sub-millisecond precision; Date objects would truncate to whole ms.
  await lutimes(path, stat.atimeMs / 1000, stat.mtimeMs / 1000);
}
