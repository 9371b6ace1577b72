// `peili configure`: point containerd at the mirror by writing hosts.toml files into its registry
// config path, after keeping a complete backup of what was there.
//
// The procedure, each phase safe to interrupt and to run again:
// 1. Backup, once: copy every entry (except Peili's own files) into `_backup.partial/`, write the
//    marker last, rename to `_backup/`. The originals stay in place until the backup is complete,
//    so a crash here leaves the original configuration; the partial copy is discarded next time.
// 2. Write one `<registry>/hosts.toml` per folder (certs first, hosts.toml by atomic rename), so
//    each hosts.toml containerd reads is at every instant either an original or a whole Peili file.
// 3. Remove what the backup holds and Peili no longer needs: stale Peili folders and the originals.
//    Entries the backup does not hold (someone else's, added later) are left alone and reported.
import { constants as fsConstants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { supportsDialTimeout } from './containerd-version.js';
import { HostsTomlError, mapCertPaths, parseHostsToml } from './existing.js';
import { FsSteps, lstatOrUndefined, type StepHook } from './fs-steps.js';
import {
  BACKUP_DIR,
  BACKUP_MARKER,
  BACKUP_PARTIAL_DIR,
  BACKUP_REMOVING_DIR,
  CERTS_DIR,
  DEFAULT_FOLDER,
  HOSTS_FILE,
  RESERVED_NAMES,
  isPeiliHostsFile,
  isPeiliOwned,
  isSafeFolderName,
  isTempName,
} from './layout.js';
import { renderHostsToml, type HostsFile, type TomlTable } from './render.js';

/** Default `dial_timeout` written for containerd ≥ 1.7, in milliseconds. */
export const DEFAULT_DIAL_TIMEOUT_MS = 200;

/** Inputs of `configure`. */
export interface ConfigureOptions {
  /** containerd's registry config path, e.g. `/etc/containerd/certs.d`. Created when missing. */
  readonly configPath: string;
  /** Registries to mirror, one folder each; empty means all (`_default`). */
  readonly registries: readonly string[];
  /** Mirror endpoints, e.g. `http://10.0.0.7:29999`, tried in order before upstream. */
  readonly mirrorTargets: readonly string[];
  /** Let the mirror resolve tags (`capabilities = ['pull', 'resolve']`). */
  readonly resolve: boolean;
  /** Keep the previous hosts (and their certs) after ours. */
  readonly prependExisting: boolean;
  /** containerd's version; `dial_timeout` is written only for ≥ 1.7. Undefined counts as 1.6. */
  readonly containerdVersion: string | undefined;
  /** @default 200 */
  readonly dialTimeoutMs?: number;
  /** Called before every filesystem change (crash tests). */
  readonly onStep?: StepHook;
  /**
   * fsync every write and rename so the result survives a power loss. Tests may turn it off for
   * speed: ordering and atomicity (what a process crash tests) do not depend on it. @default true
   */
  readonly durable?: boolean;
  readonly signal?: AbortSignal;
}

/** What `configure` did. */
export interface ConfigureResult {
  /** True when this run made the backup (the first run, or one resuming an interrupted backup). */
  readonly backupCreated: boolean;
  /** Folders holding a Peili hosts.toml, in write order. */
  readonly folders: readonly string[];
  /** Whether `dial_timeout` was written. */
  readonly dialTimeout: boolean;
  /** Top-level entries that are neither Peili's nor in the backup; left untouched. */
  readonly foreign: readonly string[];
  /** Things that did not stop the run: unreadable previous files, cert files not found. */
  readonly warnings: readonly string[];
}

/** An unsafe state configure or cleanup refuses to touch; the message says what to do. */
export class HostsStateError extends Error {
  override readonly name = 'HostsStateError';
}

/** Writes Peili's hosts.toml files into the config path (see the procedure at the top of this file). */
export async function configure(options: ConfigureOptions): Promise<ConfigureResult> {
  const root = options.configPath;
  if (options.mirrorTargets.length === 0) throw new HostsStateError('configure: no mirror targets given');
  for (const registry of options.registries) {
    if (!isSafeFolderName(registry) || registry === DEFAULT_FOLDER) {
      throw new HostsStateError(`configure: ${JSON.stringify(registry)} cannot be a registry folder name`);
    }
  }
  const fs = new FsSteps(root, options.onStep, options.signal, options.durable ?? true);
  const warnings: string[] = [];

  if (!(await lstatOrUndefined(root))) await fs.mkdir(root);
  // A read-only mount otherwise surfaces as a misleading ENOENT from the recursive mkdir below.
  await access(root, fsConstants.W_OK);
  // A cleanup that got as far as renaming the backup had already restored everything.
  await fs.remove(join(root, BACKUP_REMOVING_DIR));

  const backup = join(root, BACKUP_DIR);
  let backupCreated = false;
  if (await lstatOrUndefined(backup)) {
    await assertCompleteBackup(root);
  } else {
    await createBackup(fs, root);
    backupCreated = true;
  }

  const plans = await planFolders(root, options, warnings);
  const dialTimeout = supportsDialTimeout(options.containerdVersion);
  for (const plan of plans) {
    const folder = join(root, plan.name);
    await ensureFolder(fs, root, plan.name);
    const certsDir = join(folder, CERTS_DIR);
    if (plan.copies.length > 0) {
      await fs.mkdir(certsDir, 0o700);
      for (const copy of plan.copies) await fs.copy(copy.src, join(certsDir, copy.name));
    }
    const text = renderHostsToml({
      registry: plan.name === DEFAULT_FOLDER ? undefined : plan.name,
      mirrorTargets: plan.mirrored ? options.mirrorTargets : [],
      resolve: options.resolve,
      dialTimeoutMs: dialTimeout ? (options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS) : undefined,
      ...(plan.existing ? { existing: plan.existing } : {}),
    });
    await fs.writeFile(join(folder, HOSTS_FILE), text);
    // Certs of an earlier run that this hosts.toml no longer references.
    const wanted = new Set(plan.copies.map((copy) => copy.name));
    for (const name of (await readdir(certsDir).catch(() => [])).sort()) {
      if (!wanted.has(name)) await fs.remove(join(certsDir, name));
    }
    if (wanted.size === 0) await fs.remove(certsDir);
  }

  const targets = new Set(plans.map((plan) => plan.name));
  const foreign: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (RESERVED_NAMES.has(name)) continue;
    const path = join(root, name);
    if (isTempName(name)) {
      await fs.remove(path);
      continue;
    }
    if (targets.has(name)) {
      await removeLeftovers(fs, path, join(backup, name), new Set([HOSTS_FILE, CERTS_DIR]), false);
      continue;
    }
    const peili =
      (await isPeiliHostsFile(join(path, HOSTS_FILE))) ||
      (await lstatOrUndefined(join(path, CERTS_DIR))) !== undefined;
    const backed = join(backup, name);
    if (!peili && !(await lstatOrUndefined(backed))) {
      foreign.push(name);
      continue;
    }
    if (!(await holdsForeign(path, backed, peili))) {
      // All of it is Peili's or in the backup: make it vanish in one step.
      await fs.discard(path);
      continue;
    }
    // Mixed with someone else's files: remove ours (hosts.toml first, so containerd stops reading
    // it before the certs it names go) and the backed-up originals, keep the rest.
    if (await isPeiliHostsFile(join(path, HOSTS_FILE))) await fs.remove(join(path, HOSTS_FILE));
    await fs.remove(join(path, CERTS_DIR));
    await removeLeftovers(fs, path, backed, NOTHING, peili);
  }
  await fs.syncDir(root);
  return { backupCreated, folders: plans.map((plan) => plan.name), dialTimeout, foreign, warnings };
}

/** Throws unless `_backup` carries Peili's marker (it could be someone else's folder). */
export async function assertCompleteBackup(root: string): Promise<void> {
  const marker = await lstatOrUndefined(join(root, BACKUP_DIR, BACKUP_MARKER));
  if (!marker?.isFile()) {
    throw new HostsStateError(
      `${join(root, BACKUP_DIR)} exists but has no ${BACKUP_MARKER}: it is not a complete Peili backup. ` +
        'Restore or move it by hand, then run again.',
    );
  }
}

async function createBackup(fs: FsSteps, root: string): Promise<void> {
  const partial = join(root, BACKUP_PARTIAL_DIR);
  await fs.remove(partial);
  await fs.mkdir(partial, 0o700);
  const skip = (src: string): Promise<boolean> =>
    isPeiliOwned(root, relative(root, src).split(sep).join('/'));
  for (const name of (await readdir(root)).sort()) {
    if (RESERVED_NAMES.has(name)) continue;
    const path = join(root, name);
    // A folder holding nothing but Peili's files (an earlier run whose backup was lost) is not
    // part of the original configuration, not even as an empty folder.
    const peili = await isPeiliHostsFile(join(path, HOSTS_FILE));
    if (peili && !(await holdsForeign(path, undefined, true))) continue;
    await fs.copy(path, join(partial, name), skip);
  }
  await fs.writeFile(
    join(partial, BACKUP_MARKER),
    `Complete backup of ${root} made by peili configure.\n`,
    0o600,
  );
  await fs.syncDir(partial);
  await fs.rename(partial, join(root, BACKUP_DIR));
}

interface FolderPlan {
  readonly name: string;
  /** Our mirror hosts go in (the registry is mirrored); false for a folder kept only for its old hosts. */
  readonly mirrored: boolean;
  readonly existing: HostsFile | undefined;
  readonly copies: readonly { src: string; name: string }[];
}

async function planFolders(
  root: string,
  options: ConfigureOptions,
  warnings: string[],
): Promise<FolderPlan[]> {
  const backup = join(root, BACKUP_DIR);
  const mirrored = options.registries.length > 0 ? [...options.registries] : [DEFAULT_FOLDER];
  const names = [...mirrored];
  const claimed = new Set(mirrored.flatMap((registry) => [registry, hostDirectoryAlias(registry)]));
  if (options.prependExisting) {
    // Registries configured before keep their hosts even when not mirrored: containerd reads the most
    // specific folder, so dropping one would silently change how that registry is pulled.
    for (const name of (await readdir(backup)).sort()) {
      if (claimed.has(name) || !isSafeFolderName(name)) continue;
      // Only real folders: a symlinked one is restored as the link it was, not rewritten.
      if (!(await lstatOrUndefined(join(backup, name)))?.isDirectory()) continue;
      if ((await lstatOrUndefined(join(backup, name, HOSTS_FILE)))?.isFile()) names.push(name);
    }
  }
  const plans: FolderPlan[] = [];
  for (const name of names) {
    const isMirrored = mirrored.includes(name);
    let existing: HostsFile | undefined;
    let copies: { src: string; name: string }[] = [];
    if (options.prependExisting) {
      // The folder containerd would have read for this registry: `host_port_` wins over `host:port`.
      let source = name;
      let text: string | undefined;
      for (const candidate of [hostDirectoryAlias(name), name]) {
        if (candidate === undefined) continue;
        text = await readFile(join(backup, candidate, HOSTS_FILE), 'utf8').catch(() => undefined);
        source = candidate;
        if (text !== undefined) break;
      }
      if (text !== undefined) {
        try {
          const parsed = parseHostsToml(text, join(BACKUP_DIR, source, HOSTS_FILE));
          ({ existing, copies } = await relocateCerts(root, source, parsed, warnings));
        } catch (error) {
          if (!(error instanceof HostsTomlError)) throw error;
          warnings.push(`${error.message}; its hosts are not kept`);
        }
      }
    }
    if (!isMirrored && !existing) continue;
    plans.push({ name, mirrored: isMirrored, existing, copies });
  }
  return plans;
}

/**
 * The other folder name containerd looks for a `host:port` registry under, first: `host_port_`
 * (containerd's remotes/docker/config hostDirectory); undefined without a port.
 */
export function hostDirectoryAlias(registry: string): string | undefined {
  const colon = registry.lastIndexOf(':');
  if (colon <= 0 || !/^\d+$/.test(registry.slice(colon + 1))) return undefined;
  return `${registry.slice(0, colon)}_${registry.slice(colon + 1)}_`;
}

/**
 * Points the cert paths of a backed-up hosts.toml at copies inside `<folder>/_peili-certs/`,
 * written relative (containerd resolves relative paths against the folder), because the
 * originals were in the config path and are removed, and because the config path may be mounted
 * elsewhere in this container than on the host.
 */
async function relocateCerts(
  root: string,
  folder: string,
  file: HostsFile,
  warnings: string[],
): Promise<{ existing: HostsFile; copies: { src: string; name: string }[] }> {
  const backup = join(root, BACKUP_DIR);
  const copies: { src: string; name: string }[] = [];
  const bySource = new Map<string, string>();
  const sources = new Map<string, string | undefined>();
  const all: TomlTable[] = [file.top, ...file.hosts.map((host) => host.table)];
  for (const table of all) {
    mapCertPaths(table, (path) => {
      sources.set(path, undefined);
      return path;
    });
  }
  for (const path of sources.keys()) sources.set(path, await findCertSource(root, backup, folder, path));
  const rewrite = (path: string): string => {
    const src = sources.get(path);
    if (src === undefined) {
      warnings.push(`${join(BACKUP_DIR, folder, HOSTS_FILE)}: cert file ${path} not found; path kept as is`);
      return path;
    }
    let name = bySource.get(src);
    if (name === undefined) {
      name = `${copies.length + 1}-${basename(src)}`;
      bySource.set(src, name);
      copies.push({ src, name });
    }
    return `${CERTS_DIR}/${name}`;
  };
  const existing: HostsFile = {
    top: mapCertPaths(file.top, rewrite),
    hosts: file.hosts.map((host) => ({ url: host.url, table: mapCertPaths(host.table, rewrite) })),
  };
  return { existing, copies };
}

async function findCertSource(
  root: string,
  backup: string,
  folder: string,
  path: string,
): Promise<string | undefined> {
  const isFile = async (candidate: string): Promise<boolean> =>
    (await lstatOrUndefined(candidate))?.isFile() ?? false;
  if (!isAbsolute(path)) {
    const candidate = join(backup, folder, path);
    return (await isFile(candidate)) ? candidate : undefined;
  }
  const inRoot = relative(root, path);
  if (!inRoot.startsWith('..') && !isAbsolute(inRoot)) {
    const candidate = join(backup, inRoot);
    return (await isFile(candidate)) ? candidate : undefined;
  }
  if (await isFile(path)) return path;
  // The config path is often mounted somewhere else in this container than on the host
  // (/host/etc/containerd/certs.d vs /etc/containerd/certs.d): match on a backed-up folder name.
  const parts = path.split('/');
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] === '' || RESERVED_NAMES.has(parts[i]!)) continue;
    const candidate = join(backup, ...parts.slice(i));
    if ((await lstatOrUndefined(join(backup, parts[i]!)))?.isDirectory() && (await isFile(candidate)))
      return candidate;
  }
  return undefined;
}

async function ensureFolder(fs: FsSteps, root: string, name: string): Promise<void> {
  const path = join(root, name);
  const stat = await lstatOrUndefined(path);
  if (stat && !stat.isDirectory()) {
    // A file or link under a registry's name: it is in the backup (or we refuse), so it can go.
    if (!(await lstatOrUndefined(join(root, BACKUP_DIR, name)))) {
      throw new HostsStateError(`${path} is not a folder and not in the backup; move it away and run again`);
    }
    await fs.remove(path);
  }
  await fs.mkdir(path);
}

/**
 * True when `live` holds something that is neither in the backup at the same place nor Peili's
 * (its hosts.toml and copied certs when `peili`, temp files anywhere).
 */
export async function holdsForeign(
  live: string,
  backed: string | undefined,
  peili: boolean,
): Promise<boolean> {
  const stat = await lstatOrUndefined(live);
  if (!stat) return false;
  const backedStat = backed === undefined ? undefined : await lstatOrUndefined(backed);
  if (!stat.isDirectory()) return !backedStat;
  for (const name of await readdir(live)) {
    if (isTempName(name)) continue;
    const child = join(live, name);
    if (peili && name === CERTS_DIR) continue;
    if (peili && name === HOSTS_FILE && (await isPeiliHostsFile(child))) continue;
    if (await holdsForeign(child, backedStat ? join(backed!, name) : undefined, false)) return true;
  }
  return !backedStat && !peili;
}

/**
 * Removes from `live` everything the backup also holds at the same place, keeping `keep` names at
 * its top. What the backup does not hold is someone else's and stays; then the answer is
 * 'foreign' (or 'kept' when `live` itself is in the backup). A folder emptied this way goes too
 * when the backup holds it or `removeIfEmptied` says it was Peili's.
 */
async function removeLeftovers(
  fs: FsSteps,
  live: string,
  backed: string,
  keep: ReadonlySet<string>,
  removeIfEmptied: boolean,
): Promise<'removed' | 'kept' | 'foreign'> {
  const stat = await lstatOrUndefined(live);
  if (!stat) return 'removed';
  const backedStat = await lstatOrUndefined(backed);
  if (!stat.isDirectory()) {
    if (!backedStat) return 'foreign';
    await fs.remove(live);
    return 'removed';
  }
  let left = false;
  for (const name of (await readdir(live)).sort()) {
    if (keep.has(name)) {
      left = true;
      continue;
    }
    const child = join(live, name);
    if (isTempName(name)) await fs.remove(child);
    else if ((await removeLeftovers(fs, child, join(backed, name), NOTHING, false)) !== 'removed')
      left = true;
  }
  if (left) return backedStat ? 'kept' : 'foreign';
  if (!backedStat && !removeIfEmptied) return 'foreign';
  await fs.removeIfEmpty(live);
  return 'removed';
}

const NOTHING: ReadonlySet<string> = new Set();
