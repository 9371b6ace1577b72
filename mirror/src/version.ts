// Which Peili this is: the version from package.json and, when known, the git commit it was built
// from (PEILI_GIT_COMMIT set by the image build, else read from the checkout's .git directory).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Version and build commit of this Peili. */
export interface VersionInfo {
  readonly version: string;
  /** Full commit hash, or undefined when unknown. */
  readonly commit: string | undefined;
}

/**
 * The nearest package.json named `peili` (the daemon's, mirror/package.json) above `from`: found
 * from `mirror/src/` under tsx, from `dist/mirror/src/` after `npm run build` (which copies it to
 * `dist/mirror/`) and in the image (`/app`). Returns the directory holding it.
 */
function findPackage(from: string): { dir: string; version: string } | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'peili' && typeof pkg.version === 'string') return { dir, version: pkg.version };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** The `.git` directory of the checkout holding `from` (in the package's folder or above it), if any. */
function findGitDir(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return join(dir, '.git');
    if (dirname(dir) === dir) return undefined;
  }
}

/** The commit HEAD points at in a `.git` directory (loose ref or packed-refs), or undefined. */
export function readGitCommit(gitDir: string): string | undefined {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
    if (!ref) return undefined;
    if (existsSync(join(gitDir, ref))) return readFileSync(join(gitDir, ref), 'utf8').trim();
    const packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
    return packed
      .split('\n')
      .map((line) => line.split(' '))
      .find(([, name]) => name === ref)?.[0];
  } catch {
    return undefined;
  }
}

/** Version from package.json and the build commit if known. */
export function versionInfo(env: Readonly<Record<string, string | undefined>> = process.env): VersionInfo {
  const pkg = findPackage(dirname(fileURLToPath(import.meta.url)));
  const fromEnv = env.PEILI_GIT_COMMIT?.trim();
  const gitDir = pkg ? findGitDir(pkg.dir) : undefined;
  const commit = fromEnv ? fromEnv : gitDir ? readGitCommit(gitDir) : undefined;
  return { version: pkg?.version ?? '0.0.0-unknown', commit };
}

/** `peili 0.1.0 (commit 1a2b3c4d5e6f)` or `peili 0.1.0`. */
export function formatVersion(info: VersionInfo): string {
  return info.commit ? `peili ${info.version} (commit ${info.commit.slice(0, 12)})` : `peili ${info.version}`;
}
