// Names Peili reserves inside containerd's registry config path, and how Peili's own files are
// recognised there. configure and cleanup agree on these; nothing else may write these names.
import { lstat, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** The complete backup of the config path as it was before the first configure. */
export const BACKUP_DIR = '_backup';
/** A backup being built; never trusted, removed and rebuilt when found. */
export const BACKUP_PARTIAL_DIR = '_backup.partial';
/** A backup whose contents have all been restored, being deleted. */
export const BACKUP_REMOVING_DIR = '_backup.removing';
/** Written last into the backup: its presence is what makes a backup complete. */
export const BACKUP_MARKER = '.peili-backup-complete';
/** Folder name containerd uses for registries without their own folder. */
export const DEFAULT_FOLDER = '_default';
/** Cert files copied from backed-up hosts live here, inside the registry folder. */
export const CERTS_DIR = '_peili-certs';
/** The file containerd reads in each registry folder. */
export const HOSTS_FILE = 'hosts.toml';
/** Suffix of temporary files of atomic writes; a crash can leave them, both commands remove them. */
export const TEMP_SUFFIX = '.peili-tmp';

/** First line of every hosts.toml Peili writes: how cleanup and configure recognise their own files. */
export const PEILI_HEADER =
  '# Written by peili configure; `peili cleanup` restores the previous configuration.';

/** Top-level names of the config path that belong to Peili's bookkeeping (never backed up). */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  BACKUP_DIR,
  BACKUP_PARTIAL_DIR,
  BACKUP_REMOVING_DIR,
]);

/** True for a leftover temporary file of an interrupted atomic write. */
export function isTempName(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX);
}

/** True when `text` is a hosts.toml written by Peili. */
export function hasPeiliHeader(text: string | Buffer): boolean {
  return (typeof text === 'string' ? text : text.toString('utf8', 0, PEILI_HEADER.length)).startsWith(
    PEILI_HEADER,
  );
}

/** True when `path` is a regular file starting with Peili's header. */
export async function isPeiliHostsFile(path: string): Promise<boolean> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat?.isFile()) return false;
  return hasPeiliHeader(await readFile(path));
}

/**
 * True when `relPath` (relative to the config path) is something Peili wrote: a hosts.toml with the
 * header or the copied-certs folder one level down, or any temporary file. Used to keep Peili's own
 * files out of a backup.
 */
export async function isPeiliOwned(root: string, relPath: string): Promise<boolean> {
  if (isTempName(basename(relPath))) return true;
  const parts = relPath.split('/');
  if (parts.length !== 2) return false;
  if (parts[1] === CERTS_DIR) return true;
  if (parts[1] === HOSTS_FILE) return isPeiliHostsFile(join(root, relPath));
  return false;
}

/** A folder name that is safe to create in the config path (a registry host or `_default`). */
export function isSafeFolderName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    !RESERVED_NAMES.has(name) &&
    name !== BACKUP_MARKER &&
    !isTempName(name)
  );
}
